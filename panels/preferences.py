"""Add-on preferences: the backend (local process or remote service), weights, SMPL-X model."""

import bpy


def addon_package():
    """The extension's package name (`bl_ext.<repo>.chromm` when installed)."""
    return __package__.rpartition(".")[0]


class CHROMM_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = addon_package()

    backend_mode: bpy.props.EnumProperty(
        name="Backend", default="LOCAL",
        items=[("LOCAL", "Local", "Start and stop the backend on this computer"),
               ("REMOTE", "Remote", "Send clips to a CHROMM service on a GPU server")])
    backend_env: bpy.props.StringProperty(
        name="Backend environment", subtype="DIR_PATH",
        description="Python environment with the backend's requirements (a folder with bin/python)")
    remote_url: bpy.props.StringProperty(name="Service URL", default="http://127.0.0.1:8765")
    remote_token: bpy.props.StringProperty(name="Token", subtype="PASSWORD")
    weights_dir: bpy.props.StringProperty(
        name="Weights folder", subtype="DIR_PATH",
        description="Folder with Pi3X model.safetensors and multiHMR_896_L.pt (empty: default)")
    smplx_model: bpy.props.StringProperty(
        name="SMPL-X model file", subtype="FILE_PATH",
        description="SMPLX_NEUTRAL.npz from smpl-x.is.tue.mpg.de (licensed; never bundled)")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_mode", expand=True)
        if self.backend_mode == "LOCAL":
            layout.prop(self, "backend_env")
            layout.prop(self, "weights_dir")
        else:
            layout.prop(self, "remote_url")
            layout.prop(self, "remote_token")
        layout.prop(self, "smplx_model")
        layout.operator("chromm.check_setup", icon="CHECKMARK")
        from ..chromm_addon.client.setup_check import last_findings

        for finding in last_findings():
            col = layout.column(align=True)
            col.label(text=finding.what, icon="CHECKMARK" if finding.ok else "ERROR")
            if finding.fix:
                col.label(text=f"    {finding.fix}")


def get_preferences(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(addon_package())
    return addon.preferences if addon else None


CLASSES = (CHROMM_AP_preferences,)
