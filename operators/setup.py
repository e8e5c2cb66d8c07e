"""The preferences' setup buttons: Install Backend, Download Weights, Choose SMPL-X File, Check.

Each long action is a background `chromm_addon.client.tasks.Task`; the operator only starts it
and a timer redraws the preferences until it ends. The logic is in chromm_addon/client.
"""

import os
import shlex
import sys

import bpy
from bpy_extras.io_utils import ImportHelper

POLL_SECONDS = 0.3


def _start(name, made):
    from ..chromm_addon.client.tasks import set_active

    set_active(name, made)
    if not bpy.app.timers.is_registered(_poll_tasks):
        bpy.app.timers.register(_poll_tasks, first_interval=POLL_SECONDS)
    return made


def _poll_tasks():
    """Timer: redraw the preferences while a task runs."""
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()
    from ..chromm_addon.client.tasks import busy

    return POLL_SECONDS if any(busy(n) for n in ("install", "download", "check")) else None


class _StartsTask:
    """Mixin: the operator starts the background task `task_name`, one at a time."""

    task_name = ""

    @classmethod
    def poll(cls, context):
        from ..chromm_addon.client.tasks import busy

        return not busy(cls.task_name)


def _prefs(context):
    from ..panels.preferences import get_preferences

    return get_preferences(context)


def _abspath(value):
    return bpy.path.abspath(value) if value else ""


class CHROMM_OT_check_setup(_StartsTask, bpy.types.Operator):
    """Test the backend, the GPU, the network weights and the SMPL-X file in the background, and say how to fix each problem"""

    bl_idname = "chromm.check_setup"
    bl_label = "Check"

    task_name = "check"

    def execute(self, context):
        from ..chromm_addon.client.setup_check import check_task
        from ..panels.preferences import backend_env_path

        prefs = _prefs(context)
        extra = shlex.split(os.environ.get("CHROMM_BACKEND_ARGS", ""))
        _start("check", check_task(
            mode=prefs.backend_mode, env_path=backend_env_path(prefs),
            weights_dir=_abspath(prefs.weights_dir), smplx_path=_abspath(prefs.smplx_model),
            url=prefs.remote_url, token=prefs.remote_token, extra_args=extra))
        return {"FINISHED"}


class CHROMM_OT_install_backend(_StartsTask, bpy.types.Operator):
    """Install (or repair) the backend's Python environment with PyTorch in the add-on's folder. Needs internet access and a few GB of disk"""

    bl_idname = "chromm.install_backend"
    bl_label = "Install Backend"

    task_name = "install"

    def execute(self, context):
        from ..chromm_addon.client.installer import install_backend
        from ..chromm_addon.client.tasks import Task
        from ..panels.preferences import installed_backend_dir, user_folder

        from ..chromm_addon.network.hub import ONLINE_ACCESS_OFF

        if not bpy.app.online_access:
            self.report({"ERROR"}, f"Install Backend downloads packages: {ONLINE_ACCESS_OFF}")
            return {"CANCELLED"}
        prefs = _prefs(context)
        base = _abspath(prefs.backend_python) or sys.executable
        target = installed_backend_dir(create=True)
        log = os.path.join(user_folder(), "install.log")
        with open(log, "w", encoding="utf-8"):
            pass  # a fresh log per run
        _start("install", Task("install", lambda t: install_backend(t, target, base_python=base),
                               log_path=log).start())
        return {"FINISHED"}


class CHROMM_OT_download_weights(_StartsTask, bpy.types.Operator):
    """Download the network weights from the Hugging Face hub (about 6.7 GB) into the weights folder; tick each licence first"""

    bl_idname = "chromm.download_weights"
    bl_label = "Download Weights"

    task_name = "download"

    def execute(self, context):
        from ..chromm_addon.client.weights_download import download_task
        from ..chromm_addon.errors import ChrommError
        from ..panels.preferences import backend_env_path, user_folder

        prefs = _prefs(context)
        accepted = [k for k, ok in (("pi3x", prefs.accept_pi3x), ("multihmr", prefs.accept_multihmr)) if ok]
        try:
            made = download_task(backend_env_path(prefs), _abspath(prefs.weights_dir),
                                 accepted, token=prefs.hub_token,
                                 online_access=bpy.app.online_access,
                                 log_path=os.path.join(user_folder(), "download.log"))
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _start("download", made)
        return {"FINISHED"}


class CHROMM_OT_cancel_task(bpy.types.Operator):
    """Stop this task (a download resumes where it stopped next time)"""

    bl_idname = "chromm.cancel_task"
    bl_label = "Cancel"

    name: bpy.props.StringProperty()

    def execute(self, context):
        from ..chromm_addon.client.tasks import active

        t = active(self.name)
        if t is not None:
            t.cancel()
        return {"FINISHED"}


class CHROMM_OT_open_log(bpy.types.Operator):
    """Open this task's log file"""

    bl_idname = "chromm.open_log"
    bl_label = "Open Log"

    name: bpy.props.StringProperty()

    def execute(self, context):
        from ..chromm_addon.client.tasks import active

        t = active(self.name)
        if t is None or not t.log_path or not os.path.exists(t.log_path):
            self.report({"WARNING"}, "no log yet")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=t.log_path)
        return {"FINISHED"}


class CHROMM_OT_choose_smplx(bpy.types.Operator, ImportHelper):
    """Choose SMPLX_NEUTRAL.npz (or .pkl, converted to .npz) and check it at once"""

    bl_idname = "chromm.choose_smplx"
    bl_label = "Choose SMPL-X File"

    filter_glob: bpy.props.StringProperty(default="*.npz;*.pkl", options={"HIDDEN"})

    def execute(self, context):
        from ..chromm_addon.body.model_file import convert_pkl_to_npz, describe_model_file
        from ..chromm_addon.errors import ChrommError
        from ..panels.preferences import user_folder

        path = bpy.path.abspath(self.filepath)
        try:
            if path.lower().endswith(".pkl"):
                path = convert_pkl_to_npz(path, out_dir=user_folder())
            line = describe_model_file(path)
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _prefs(context).smplx_model = path
        self.report({"INFO"}, f"SMPL-X model: {line}")
        return {"FINISHED"}


CLASSES = (CHROMM_OT_check_setup, CHROMM_OT_install_backend, CHROMM_OT_download_weights,
           CHROMM_OT_cancel_task, CHROMM_OT_open_log, CHROMM_OT_choose_smplx)


def unregister_extra():
    from ..chromm_addon.client.tasks import cancel_all

    cancel_all()
    if bpy.app.timers.is_registered(_poll_tasks):
        bpy.app.timers.unregister(_poll_tasks)
