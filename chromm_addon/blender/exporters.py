"""Export built people for animation: FBX (Blender, Unreal, Unity presets), glTF/GLB, BVH, USD.

Exports work on the selected people of a built take (armature plus skinned mesh when there is
one), one file for all or one file per person. Keys are baked for every frame of the scene range
so root motion and feet on the floor survive the trip; `tests/test_blender_export.py` re-imports
each format in a fresh scene and compares joint positions.
"""

import contextlib
import dataclasses
import os
import typing

import bpy

from ..errors import ChrommError
from ..io.atomic import atomic_output
from .props import NAME_PROP, PERSON_PROP

_FBX_COMMON = dict(
    use_selection=True, object_types={"ARMATURE", "MESH"}, add_leaf_bones=False,
    primary_bone_axis="Y", secondary_bone_axis="X", use_armature_deform_only=False,
    armature_nodetype="NULL", bake_anim=True, bake_anim_use_all_bones=True,
    bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False,
    bake_anim_force_startend_keying=True, bake_anim_step=1.0, bake_anim_simplify_factor=0.0,
    use_custom_props=True, mesh_smooth_type="FACE")

# Engine presets. Unreal works in centimetres, Z up, X forward: FBX_SCALE_ALL bakes the unit
# conversion into the bones and keys so the rig imports at scale 1. Unity is Y up and expects
# unit-scaled objects with the axis change applied to the data (bake_space_transform), so the
# root does not arrive rotated by -90 degrees.
@dataclasses.dataclass(frozen=True)
class FbxPreset:
    label: str
    description: str
    settings: dict  # keyword arguments of bpy.ops.export_scene.fbx


FBX_PRESETS = {
    "BLENDER": FbxPreset("Blender", "Blender's FBX defaults",
                         dict(axis_forward="-Z", axis_up="Y", apply_scale_options="FBX_SCALE_NONE",
                              bake_space_transform=False)),
    "UNREAL": FbxPreset("Unreal Engine", "Centimetres, Z up, X forward, no leaf bones",
                        dict(axis_forward="X", axis_up="Z", apply_scale_options="FBX_SCALE_ALL",
                             bake_space_transform=False)),
    "UNITY": FbxPreset("Unity", "Y up with the axis change applied, unit scale",
                       dict(axis_forward="-Z", axis_up="Y", apply_scale_options="FBX_SCALE_UNITS",
                            bake_space_transform=True)),
}


def take_people(collection):
    """[(armature, mesh or None)] of a built take's collection, ordered by person id."""
    objects = [o for o in collection.all_objects if PERSON_PROP in o]
    arms = sorted((o for o in objects if o.type == "ARMATURE"), key=lambda o: o[PERSON_PROP])
    meshes = {o[PERSON_PROP]: o for o in objects if o.type == "MESH"}
    return [(a, meshes.get(a[PERSON_PROP])) for a in arms]


def export_people(people, filepath, fmt="FBX", preset="BLENDER", per_person=False, scene=None):
    """Export [(armature, mesh or None)] to `filepath`; returns the written paths.

    With `per_person`, each person goes to `<stem>_<name><ext>` (the person's name in the take's
    person map, else `person<ID>`). BVH holds one skeleton per
    file, so it is always per person when there are several.
    """
    fmt = fmt.upper()
    if fmt not in EXPORT_FORMATS:
        raise ChrommError(f"{filepath}: unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")
    if not people:
        raise ChrommError(f"{filepath}: nothing to export (no CHROMM people selected)")
    scene = scene or bpy.context.scene
    stem, ext = os.path.splitext(str(filepath))
    ext = ext or EXPORT_FORMATS[fmt].ext
    if EXPORT_FORMATS[fmt].one_skeleton and len(people) > 1:
        per_person = True
    groups = ([(f"{stem}_{bpy.path.clean_name(arm.get(NAME_PROP) or f'person{arm[PERSON_PROP]}')}{ext}",
                [(arm, mesh)]) for arm, mesh in people]
              if per_person else [(stem + ext, people)])
    written = []
    for path, group in groups:
        with _exporting(scene, group) as objects, atomic_output(path, suffix=ext) as tmp:
            EXPORT_FORMATS[fmt].export(tmp, scene, objects, preset)
        written.append(path)
    return written


@contextlib.contextmanager
def _exporting(scene, people):
    """Select exactly these people's objects, visible at every frame (validity keys muted)."""
    objects = [o for pair in people for o in pair if o is not None]
    view_layer = scene.view_layers[0]
    before_sel = [o for o in view_layer.objects if o.select_get(view_layer=view_layer)]
    before_active = view_layer.objects.active
    muted = []
    for obj in objects:
        anim = obj.animation_data
        for fc in _fcurves(anim):
            if fc.data_path in ("hide_viewport", "hide_render") and not fc.mute:
                fc.mute = True
                muted.append(fc)
        obj.hide_viewport = obj.hide_render = False
    frame = scene.frame_current
    try:
        for o in before_sel:
            o.select_set(False, view_layer=view_layer)
        for o in objects:
            o.select_set(True, view_layer=view_layer)
        view_layer.objects.active = people[0][0]
        with bpy.context.temp_override(scene=scene, view_layer=view_layer,
                                       active_object=people[0][0], selected_objects=objects):
            yield objects
    finally:
        for fc in muted:
            fc.mute = False
        for o in objects:
            o.select_set(False, view_layer=view_layer)
        for o in before_sel:
            o.select_set(True, view_layer=view_layer)
        view_layer.objects.active = before_active
        scene.frame_set(frame)


def _fcurves(anim):
    """F-curves of the assigned action (slotted on 4.4+, legacy before)."""
    if anim is None or anim.action is None:
        return []
    action = anim.action
    if hasattr(action, "layers") and getattr(anim, "action_slot", None) is not None:
        curves = []
        for layer in action.layers:
            for strip in layer.strips:
                bag = strip.channelbag(anim.action_slot)
                if bag is not None:
                    curves.extend(bag.fcurves)
        return curves
    return list(action.fcurves)


def _export_fbx(path, scene, objects, preset):
    if preset not in FBX_PRESETS:
        raise ChrommError(f"{path}: unknown FBX preset {preset!r} (one of {', '.join(FBX_PRESETS)})")
    bpy.ops.export_scene.fbx(filepath=path, **_FBX_COMMON, **FBX_PRESETS[preset].settings)


def _export_gltf(fmt):
    def export(path, scene, objects, preset):
        bpy.ops.export_scene.gltf(
            filepath=path, export_format="GLB" if fmt == "GLB" else "GLTF_SEPARATE",
            use_selection=True, export_animations=True, export_frame_range=True,
            export_force_sampling=True, export_animation_mode="ACTIONS", export_cameras=False,
            export_yup=True, export_def_bones=False, export_leaf_bone=False)
    return export


def _export_bvh(path, scene, objects, preset):
    bpy.ops.export_anim.bvh(filepath=path, frame_start=scene.frame_start,
                            frame_end=scene.frame_end, rotate_mode="NATIVE",
                            root_transform_only=False)


def _export_usd(path, scene, objects, preset):
    bpy.ops.wm.usd_export(filepath=path, selected_objects_only=True, export_animation=True,
                          export_armatures=True, export_shapekeys=True, export_cameras=False,
                          export_materials=False, evaluation_mode="RENDER")


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    ext: str
    label: str
    description: str
    export: typing.Callable      # (path, scene, objects, preset)
    one_skeleton: bool = False   # one skeleton per file: several people are written one per file


# The export formats: the operator's list and `export_people` both read this table, so adding a
# format is one entry here.
EXPORT_FORMATS = {
    "FBX": ExportFormat(".fbx", "FBX", "Armatures and skinned meshes, engine presets", _export_fbx),
    "GLB": ExportFormat(".glb", "glTF Binary (.glb)", "One binary glTF file", _export_gltf("GLB")),
    "GLTF": ExportFormat(".gltf", "glTF (.gltf)", "glTF with separate buffers", _export_gltf("GLTF")),
    "BVH": ExportFormat(".bvh", "BVH (skeleton only)", "Motion capture skeleton, one per file", _export_bvh,
                        one_skeleton=True),
    "USD": ExportFormat(".usdc", "USD (.usdc)", "Binary USD with armatures and shape keys", _export_usd),
}
