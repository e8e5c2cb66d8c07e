"""Add-on preferences: the backend (installed by the add-on, or a remote service), the network
weights (downloaded after each licence is ticked), the SMPL-X model file, and Check."""

import os
import textwrap

import bpy

_SMPLX_STATUS = {}  # path -> (ok, line): the file picked is checked at once, once


def addon_package():
    """The extension's package name (`bl_ext.<repo>.chromm` when installed)."""
    return __package__.rpartition(".")[0]


def user_folder(create=True):
    """The extension's own user folder (kept across updates); a developer checkout enabled as a
    legacy add-on has none, so it gets one in Blender's config folder."""
    try:
        return bpy.utils.extension_path_user(addon_package(), create=create)
    except ValueError:
        path = os.path.join(bpy.utils.user_resource("CONFIG"), "chromm")
        if create:
            os.makedirs(path, exist_ok=True)
        return path


def installed_backend_dir(create=False):
    return os.path.join(user_folder(create=create), "backend")


def backend_env_path(prefs):
    """The backend environment: the one chosen in the preferences, else the installed one."""
    return bpy.path.abspath(prefs.backend_env) if prefs.backend_env else installed_backend_dir()


def _smplx_changed(self, context):
    _SMPLX_STATUS.clear()


def smplx_status(path):
    """(ok, one line) for the SMPL-X file, checked once per path."""
    if path not in _SMPLX_STATUS:
        from ..chromm_addon.client.setup_check import check_smplx_file

        finding = check_smplx_file(bpy.path.abspath(path) if path else "")
        _SMPLX_STATUS[path] = (finding.level == "ok", finding.what)
    return _SMPLX_STATUS[path]


def wrapped(layout, text, icon="NONE", width_px=600):
    """A label over as many lines as it needs (Blender's labels do not wrap)."""
    chars = max(30, int(width_px / 7))
    col = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(text, chars) or [""]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")
    return col


class CHROMM_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = addon_package()

    backend_mode: bpy.props.EnumProperty(
        name="Backend", default="LOCAL",
        items=[("LOCAL", "Local", "Run the backend on this computer (installed by the add-on)"),
               ("REMOTE", "Remote", "Send clips to a CHROMM service on a GPU server")])
    backend_env: bpy.props.StringProperty(
        name="Backend environment", subtype="DIR_PATH",
        description="Python environment with the backend's requirements; empty: the one "
                    "Install Backend made in the add-on's folder")
    backend_python: bpy.props.StringProperty(
        name="Python for Install Backend", subtype="FILE_PATH",
        description="Interpreter the backend environment is made from; empty: Blender's own Python")
    remote_url: bpy.props.StringProperty(name="Service URL", default="http://127.0.0.1:8765")
    remote_token: bpy.props.StringProperty(name="Token", subtype="PASSWORD")
    weights_dir: bpy.props.StringProperty(
        name="Weights folder", subtype="DIR_PATH",
        description="Folder with Pi3X model.safetensors and multiHMR_896_L.pt (empty: the default, "
                    "~/.cache/chromm/weights)")
    accept_pi3x: bpy.props.BoolProperty(
        name="I accept the Pi3X weights' licence (CC BY-NC 4.0, non-commercial)", default=False)
    accept_multihmr: bpy.props.BoolProperty(
        name="I accept the Multi-HMR licence (NAVER, non-commercial)", default=False)
    hub_token: bpy.props.StringProperty(
        name="Hub token", subtype="PASSWORD",
        description="Hugging Face access token (optional; only if the hub asks for one)")
    smplx_model: bpy.props.StringProperty(
        name="SMPL-X model file", subtype="FILE_PATH", update=_smplx_changed,
        description="SMPLX_NEUTRAL.npz (or .pkl) from smpl-x.is.tue.mpg.de (licensed; never bundled)")

    def draw(self, context):
        from ..chromm_addon.client.setup_check import FIX_OPERATORS
        from ..chromm_addon.client.tasks import active as task
        from ..chromm_addon.network.hub import HUB_FILES

        layout = self.layout
        width = getattr(getattr(context, "region", None), "width", 600) or 600
        layout.prop(self, "backend_mode", expand=True)
        if self.backend_mode == "LOCAL":
            box = layout.box()
            box.label(text="Backend", icon="CONSOLE")
            from ..chromm_addon.client.installer import venv_python

            installed = venv_python(installed_backend_dir()) if not self.backend_env else None
            if not self.backend_env:
                box.label(text="Installed in the add-on's folder" if installed else
                          "Not installed yet: press Install Backend (needs internet, ~2 to 8 GB)",
                          icon="CHECKMARK" if installed else "INFO")
            row = box.row()
            row.operator("chromm.install_backend", icon="IMPORT",
                         text="Repair / Update Backend" if installed else "Install Backend")
            _draw_task(box, task("install"), width)
            sub = box.column()
            sub.prop(self, "backend_python")
            sub.prop(self, "backend_env")

            box = layout.box()
            box.label(text="Network weights (about 6.7 GB)", icon="FILE_BLEND")
            box.prop(self, "weights_dir")
            for kind, prop in (("pi3x", "accept_pi3x"), ("multihmr", "accept_multihmr")):
                f = HUB_FILES[kind]
                row = box.row()
                row.prop(self, prop)
                row.operator("wm.url_open", text="Licence", icon="URL").url = f.licence_url
            box.prop(self, "hub_token")
            if not bpy.app.online_access:
                wrapped(box, "Online access is off: allow it in Preferences > System > Network > "
                             "Allow Online Access to download", "ERROR", width)
            box.operator("chromm.download_weights", icon="IMPORT")
            _draw_task(box, task("download"), width)
        else:
            box = layout.box()
            box.prop(self, "remote_url")
            box.prop(self, "remote_token")

        box = layout.box()
        box.label(text="SMPL-X body model", icon="OUTLINER_OB_ARMATURE")
        row = box.row(align=True)
        row.prop(self, "smplx_model", text="")
        row.operator("chromm.choose_smplx", text="Choose File", icon="FILEBROWSER")
        ok, line = smplx_status(self.smplx_model)
        wrapped(box, line, "CHECKMARK" if ok else "INFO", width)
        if not ok:
            box.operator("wm.url_open", text="Register at smpl-x.is.tue.mpg.de",
                         icon="URL").url = "https://smpl-x.is.tue.mpg.de"

        box = layout.box()
        row = box.row()
        row.operator("chromm.check_setup", icon="CHECKMARK")
        check = task("check")
        _draw_task(box, check, width, findings=False)
        if check is not None:
            icons = {"ok": "CHECKMARK", "warning": "INFO", "error": "ERROR"}
            for finding in check.snapshot()["findings"]:
                col = wrapped(box, finding.what, icons.get(finding.level, "DOT"), width)
                if finding.fix and finding.level != "ok":
                    wrapped(col, finding.fix, "BLANK1", width - 20)
                if finding.action in FIX_OPERATORS and finding.level != "ok":
                    op, label = FIX_OPERATORS[finding.action]
                    col.operator(op, text=label)


def _draw_task(layout, t, width, findings=True):
    """Stage, progress bar, Cancel and Open Log of a running (or the last) task."""
    if t is None:
        return
    snap = t.snapshot()
    if snap["state"] == "running":
        row = layout.row()
        if snap["fraction"] is not None:
            row.progress(factor=snap["fraction"], type="BAR", text=snap["stage"])
        else:
            row.label(text=snap["stage"] + " ...", icon="SORTTIME")
        row.operator("chromm.cancel_task", text="", icon="CANCEL").name = snap["name"]
        if snap["detail"]:
            wrapped(layout, snap["detail"], "BLANK1", width)
    elif snap["state"] == "failed":
        wrapped(layout, snap["error"] or "failed", "ERROR", width)
    elif snap["state"] == "cancelled":
        layout.label(text="Cancelled", icon="CANCEL")
    elif findings:
        wrapped(layout, snap["detail"] or snap["stage"], "CHECKMARK", width)
    if snap["log_path"]:
        layout.operator("chromm.open_log", icon="TEXT").name = snap["name"]


def get_preferences(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(addon_package())
    return addon.preferences if addon else None


CLASSES = (CHROMM_AP_preferences,)
