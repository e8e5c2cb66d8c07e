"""View tools: make the scene's render frame match a take camera's image."""

import bpy


class CHROMM_OT_set_view_resolution(bpy.types.Operator):
    """Set the scene resolution and pixel aspect to the active camera's view (image size of its clip)"""

    bl_idname = "chromm.set_view_resolution"
    bl_label = "Set Resolution to View"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object or context.scene.camera
        return obj is not None and obj.type == "CAMERA"

    def execute(self, context):
        from ..chromm_addon.blender.cameras import set_view_resolution

        obj = context.active_object
        if obj is None or obj.type != "CAMERA":
            obj = context.scene.camera
        if not set_view_resolution(context.scene, obj):
            self.report({"ERROR"}, f"{obj.name}: not a CHROMM take camera (no stored image size)")
            return {"CANCELLED"}
        render = context.scene.render
        self.report({"INFO"}, f"{obj.name}: resolution {render.resolution_x} x {render.resolution_y}")
        return {"FINISHED"}


CLASSES = (CHROMM_OT_set_view_resolution,)
