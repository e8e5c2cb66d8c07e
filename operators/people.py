"""People of the result: rename, swap from the current frame, merge, split at the current frame,
delete, and Refine. Thin: chromm_addon.blender.people_edits does the work."""

import bpy

from ..chromm_addon.blender.props import TAKE_PATH_PROP, VIEWS_PATH_PROP


def _take(context):
    return context.scene.chromm.last_take


def _smplx_path(context):
    from ..panels.preferences import get_preferences

    prefs = get_preferences(context)
    return bpy.path.abspath(prefs.smplx_model) if prefs and prefs.smplx_model else None


def _timestep(context):
    scene = context.scene
    return scene.frame_current - scene.frame_start


class _PeopleOperator:
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        take = _take(context)
        return take is not None and take.get(TAKE_PATH_PROP) is not None

    def run(self, context, **kwargs):
        from ..chromm_addon.blender.people_edits import edit_people
        from ..chromm_addon.errors import ChrommError

        settings = context.scene.chromm
        try:
            settings.last_take, settings.summary = edit_people(context.scene, settings.last_take,
                                                               smplx_path=_smplx_path(context), **kwargs)
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class CHROMM_OT_person_rename(_PeopleOperator, bpy.types.Operator):
    """Rename a person (the name goes into object, armature and export file names)"""

    bl_idname = "chromm.person_rename"
    bl_label = "Rename Person"
    person: bpy.props.IntProperty(name="Person")
    name: bpy.props.StringProperty(name="Name")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        return self.run(context, rename=(self.person, self.name))


class _TwoPeople(_PeopleOperator):
    person: bpy.props.IntProperty(name="Person")
    other: bpy.props.IntProperty(name="Other person")

    def execute(self, context):
        return self.run(context, edit=self.edit(context))


class CHROMM_OT_person_swap(_TwoPeople, bpy.types.Operator):
    """Swap two people's identities from the current frame on (fixes an identity switch)"""

    bl_idname = "chromm.person_swap"
    bl_label = "Swap From Here"

    def edit(self, context):
        return {"op": "swap", "a": self.person, "b": self.other, "frame": _timestep(context)}


class CHROMM_OT_person_merge(_TwoPeople, bpy.types.Operator):
    """Merge the other person into this one (one person tracked as two)"""

    bl_idname = "chromm.person_merge"
    bl_label = "Merge Into"

    def edit(self, context):
        return {"op": "merge", "keep": self.person, "other": self.other}


class CHROMM_OT_person_split(_PeopleOperator, bpy.types.Operator):
    """Split a person at the current frame: from here on it is a new person"""

    bl_idname = "chromm.person_split"
    bl_label = "Split Here"
    person: bpy.props.IntProperty(name="Person")

    def execute(self, context):
        return self.run(context, edit={"op": "split", "person": self.person, "frame": _timestep(context)})


class CHROMM_OT_person_delete(_PeopleOperator, bpy.types.Operator):
    """Delete a person (a ghost)"""

    bl_idname = "chromm.person_delete"
    bl_label = "Delete Person"
    person: bpy.props.IntProperty(name="Person")

    def execute(self, context):
        return self.run(context, edit={"op": "delete", "person": self.person})


class CHROMM_OT_refine(_PeopleOperator, bpy.types.Operator):
    """Re-run the test-time modules on the take's views file with the current Fusion options (no
    network) and rebuild the result in place, keeping names and edits"""

    bl_idname = "chromm.refine"
    bl_label = "Refine"

    @classmethod
    def poll(cls, context):
        take = _take(context)
        return take is not None and take.get(VIEWS_PATH_PROP) is not None

    def execute(self, context):
        from ..chromm_addon.blender.people_edits import refine
        from ..chromm_addon.errors import ChrommError
        from ..chromm_addon.options import FuseOptions, from_dict
        from ..panels.properties import job_options

        settings = context.scene.chromm
        try:
            options = from_dict(FuseOptions, job_options(settings, []).get("fuse", {}), "Fusion options")
            settings.last_take, settings.summary, problems = refine(
                context.scene, settings.last_take, options, smplx_path=_smplx_path(context))
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for line in problems:
            self.report({"WARNING"}, line)
        self.report({"INFO"}, f"Refined: {settings.summary}")
        return {"FINISHED"}


def register_extra():
    bpy.types.Scene.chromm_person_other = bpy.props.IntProperty(
        name="Other person", description="The person Swap and Merge act with", min=0)


def unregister_extra():
    del bpy.types.Scene.chromm_person_other


CLASSES = (CHROMM_OT_person_rename, CHROMM_OT_person_swap, CHROMM_OT_person_merge,
           CHROMM_OT_person_split, CHROMM_OT_person_delete, CHROMM_OT_refine)
