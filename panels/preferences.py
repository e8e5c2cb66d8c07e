"""Add-on preferences: where the SMPL-X model file is (more settings arrive with the backend)."""

import bpy


def addon_package():
    """The extension's package name (`bl_ext.<repo>.chromm` when installed)."""
    return __package__.rpartition(".")[0]


class CHROMM_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = addon_package()

    smplx_model: bpy.props.StringProperty(
        name="SMPL-X model file", subtype="FILE_PATH",
        description="SMPLX_NEUTRAL.npz from smpl-x.is.tue.mpg.de (licensed; never bundled)")

    def draw(self, context):
        self.layout.prop(self, "smplx_model")


def get_preferences(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(addon_package())
    return addon.preferences if addon else None


CLASSES = (CHROMM_AP_preferences,)
