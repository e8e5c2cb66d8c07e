"""Camera tools for rendering: look through a view, cut between views, show the source clips."""

import bpy

from ..chromm_addon.blender.props import VIEW_PROP


def _take_camera(context, view):
    from ..chromm_addon.blender.render_setup import take_cameras

    collection = context.scene.chromm.last_take
    if collection is None:
        return None
    cams = [c for c in take_cameras(collection) if c[VIEW_PROP] == view]
    return cams[0] if cams else None


class _ViewOperator:
    """An operator on one view's camera of the last reconstruction."""

    bl_options = {"REGISTER", "UNDO"}
    view: bpy.props.IntProperty(name="View", min=0)

    def execute(self, context):
        cam = _take_camera(context, self.view)
        if cam is None:
            self.report({"ERROR"}, f"No camera for view {self.view} in the last reconstruction")
            return {"CANCELLED"}
        self.apply(context, cam)
        return {"FINISHED"}


class CHROMM_OT_look_through(_ViewOperator, bpy.types.Operator):
    """Make this view's camera active with its clip's resolution"""

    bl_idname = "chromm.look_through"
    bl_label = "Look Through View"

    def apply(self, context, cam):
        from ..chromm_addon.blender.render_setup import look_through

        look_through(context.scene, cam)
        screen = context.screen
        for area in screen.areas if screen else ():
            if area.type == "VIEW_3D":
                area.spaces.active.region_3d.view_perspective = "CAMERA"


class CHROMM_OT_add_cut(_ViewOperator, bpy.types.Operator):
    """Cut to this view at the current frame (a camera marker on the timeline)"""

    bl_idname = "chromm.add_cut"
    bl_label = "Cut to View Here"

    def apply(self, context, cam):
        from ..chromm_addon.blender.render_setup import add_cut

        add_cut(context.scene, cam, context.scene.frame_current)


class CHROMM_OT_attach_sources(bpy.types.Operator):
    """Show each view's source clip behind its camera, aligned in time"""

    bl_idname = "chromm.attach_sources"
    bl_label = "Show Source Clips"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.scene.chromm.last_take is not None

    def execute(self, context):
        from ..chromm_addon.blender.render_setup import attach_sources_from_meta, collection_sources
        from ..chromm_addon.errors import ChrommError

        collection = context.scene.chromm.last_take
        try:
            done = attach_sources_from_meta(collection, {"sources": collection_sources(collection)},
                                            context.scene)
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not done:
            self.report({"WARNING"}, "The source clips of this result are not on disk any more")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Source clips behind {len(done)} cameras")
        return {"FINISHED"}


CLASSES = (CHROMM_OT_look_through, CHROMM_OT_add_cut, CHROMM_OT_attach_sources)
