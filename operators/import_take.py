"""File > Import > CHROMM take (.npz): the scene builder behind a file browser."""

import os

import bpy
from bpy_extras.io_utils import ImportHelper

from ..chromm_addon.errors import ChrommError


class IMPORT_SCENE_OT_chromm_take(bpy.types.Operator, ImportHelper):
    """Build a CHROMM take (cameras, point cloud, people) into a new collection"""

    bl_idname = "import_scene.chromm_take"
    bl_label = "Import CHROMM Take"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: bpy.props.StringProperty(default="*.npz", options={"HIDDEN"})
    smplx_model: bpy.props.StringProperty(
        name="SMPL-X model file", subtype="FILE_PATH",
        description="SMPLX_NEUTRAL.npz; empty: $CHROMM_SMPLX_MODEL, then the add-on preferences")
    pose_correctives: bpy.props.BoolProperty(
        name="Pose correctives", default=False,
        description="Key SMPL-X's 486 pose-corrective shape keys per frame (slower playback)")

    def execute(self, context):
        from ..chromm_addon.blender.build import build_take
        from ..chromm_addon.body.model_file import configured_model
        from ..chromm_addon.io.take import read_take
        from ..panels.preferences import get_preferences

        prefs = get_preferences(context)
        chosen, preferred = self.smplx_model, prefs.smplx_model if prefs else None
        try:
            take = read_take(self.filepath)
            model = configured_model(bpy.path.abspath(chosen) if chosen else None,
                                     bpy.path.abspath(preferred) if preferred else None)
            if context.mode != "OBJECT":
                bpy.ops.object.mode_set(mode="OBJECT")
            name = os.path.splitext(os.path.basename(self.filepath))[0]
            collection = build_take(take, name=name, smplx_model=model, scene=context.scene,
                                    pose_correctives=self.pose_correctives)
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if model is None and take.num_people:
            self.report({"WARNING"}, f"{collection.name}: no SMPL-X model file configured, "
                                     "people are armatures on an approximate skeleton")
        else:
            self.report({"INFO"}, f"Imported {collection.name}: {take.num_views} cameras, "
                                  f"{len(take.points)} points, {take.num_people} people")
        return {"FINISHED"}


def menu_func_import(self, context):
    self.layout.operator(IMPORT_SCENE_OT_chromm_take.bl_idname, text="CHROMM take (.npz)")


def register_extra():
    bpy.types.TOPBAR_MT_file_import.append(menu_func_import)


def unregister_extra():
    bpy.types.TOPBAR_MT_file_import.remove(menu_func_import)


CLASSES = (IMPORT_SCENE_OT_chromm_take,)
