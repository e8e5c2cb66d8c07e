"""Export people for animation, and retarget a person onto another rig."""

import bpy
from bpy_extras.io_utils import ExportHelper

from ..chromm_addon.blender.exporters import EXPORT_FORMATS, FBX_PRESETS
from ..chromm_addon.blender.props import BODY_PROP, PERSON_PROP


def _selected_people(context, scope):
    """[(armature, mesh)] of the selected CHROMM people, or of the whole last take."""
    from ..chromm_addon.blender.exporters import take_people

    if scope == "TAKE" and context.scene.chromm.last_take is not None:
        return take_people(context.scene.chromm.last_take)
    selected = set(context.selected_objects)
    people = []
    for collection in bpy.data.collections:
        if collection.get(BODY_PROP) is None:  # only a take's top collection
            continue
        people += [(arm, mesh) for arm, mesh in take_people(collection)
                   if arm in selected or (mesh is not None and mesh in selected)]
    return people


class CHROMM_OT_export_people(bpy.types.Operator, ExportHelper):
    """Export the selected people (or the whole result) with baked keys, root motion included"""

    bl_idname = "chromm.export_people"
    bl_label = "Export People"
    filename_ext = ""

    file_format: bpy.props.EnumProperty(
        name="Format", default="FBX",
        items=[(key, f.label, f.description) for key, f in EXPORT_FORMATS.items()])
    preset: bpy.props.EnumProperty(
        name="Target", default="BLENDER",
        items=[(key, p.label, p.description) for key, p in FBX_PRESETS.items()])
    per_person: bpy.props.BoolProperty(name="One file per person", default=False)
    scope: bpy.props.EnumProperty(
        name="People", default="SELECTED",
        items=[("SELECTED", "Selected", "The selected people"),
               ("TAKE", "Whole result", "Everyone in the last reconstruction")])

    def check(self, context):
        import os

        stem = os.path.splitext(self.filepath)[0] if self.filepath else ""
        new = stem + EXPORT_FORMATS[self.file_format].ext if stem else self.filepath
        changed = new != self.filepath
        self.filepath = new
        return changed

    def execute(self, context):
        from ..chromm_addon.blender.exporters import export_people
        from ..chromm_addon.errors import ChrommError

        people = _selected_people(context, self.scope)
        try:
            written = export_people(people, self.filepath, self.file_format, self.preset,
                                    self.per_person, context.scene)
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {len(people)} people to {len(written)} file(s)")
        return {"FINISHED"}


class CHROMM_OT_retarget(bpy.types.Operator):
    """Bake the active CHROMM person's motion onto the chosen Rigify- or Mixamo-named rig"""

    bl_idname = "chromm.retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        target = context.scene.chromm.retarget_target
        return (obj is not None and obj.type == "ARMATURE" and PERSON_PROP in obj
                and target is not None and target != obj)

    def execute(self, context):
        from ..chromm_addon.blender.retarget import retarget
        from ..chromm_addon.errors import ChrommError

        target = context.scene.chromm.retarget_target
        try:
            scheme, count = retarget(context.active_object, target, scene=context.scene)
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{target.name}: {count} bones baked ({scheme.title()} names)")
        return {"FINISHED"}


CLASSES = (CHROMM_OT_export_people, CHROMM_OT_retarget)
