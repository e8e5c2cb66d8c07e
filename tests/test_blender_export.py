"""Exports for animation, each re-imported in a fresh scene: joint positions (root motion, feet on
the floor) must survive FBX (three presets), glTF/GLB, BVH and USD, and the skinned body (the
mannequin without a model file) must come back skinned and posed where it was."""

import numpy as np
import pytest

from take_factory import make_take

pytestmark = pytest.mark.blender


def _joints(arm, scene, frames):
    out = []
    for f in frames:
        scene.frame_set(int(f))
        out.append([tuple(arm.matrix_world @ pb.head) for pb in arm.pose.bones])
    return np.array(out)


def _posed_box(bpy, mesh, scene, frame):
    """World bounding box of a skinned mesh as evaluated (posed) at `frame`."""
    scene.frame_set(int(frame))
    data = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    co = np.empty(len(data.vertices) * 3, np.float32)
    data.vertices.foreach_get("co", co)
    world = np.array(mesh.matrix_world)
    co = co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
    return np.array([co.min(0), co.max(0)])


def _reimport(bpy, path, fmt, fps):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0  # glTF stores seconds, not frames
    if fmt == "FBX":
        bpy.ops.import_scene.fbx(filepath=path, anim_offset=0)
    elif fmt in ("GLB", "GLTF"):
        bpy.ops.import_scene.gltf(filepath=path)
    elif fmt == "BVH":  # the BVH exporter writes Blender's Z-up axes as they are
        bpy.ops.import_anim.bvh(filepath=path, axis_forward="Y", axis_up="Z", rotate_mode="NATIVE")
    else:
        bpy.ops.wm.usd_import(filepath=path)
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    return arms, meshes


@pytest.mark.parametrize("fmt,preset", [("FBX", "BLENDER"), ("FBX", "UNREAL"), ("FBX", "UNITY"),
                                        ("GLB", "BLENDER"), ("BVH", "BLENDER"), ("USD", "BLENDER")])
def test_export_round_trip_keeps_joint_positions(tmp_path, fmt, preset):
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.exporters import export_people, take_people

    bpy.ops.wm.read_factory_settings(use_empty=True)
    take = make_take(T=6, P=1, V=1, N=10)
    take.transl[..., 2] = np.abs(take.transl[..., 2]) + 1.0  # a body well above the origin
    collection = build_take(take, name="take")
    scene = bpy.context.scene
    people = take_people(collection)
    names = [pb.name for pb in people[0][0].pose.bones]
    frames = np.arange(scene.frame_start, scene.frame_end + 1)
    expected = _joints(people[0][0], scene, frames)
    mannequin = people[0][1]  # no model file: the procedural mannequin, skinned to the armature
    expected_box = _posed_box(bpy, mannequin, scene, frames[-1])

    (path,) = export_people(people, tmp_path / "out", fmt, preset)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".chromm-")]
    arms, meshes = _reimport(bpy, path, fmt, int(take.fps))
    assert len(arms) == 1
    got_names = [pb.name for pb in arms[0].pose.bones]
    assert set(names) <= set(got_names)
    got = _joints(arms[0], bpy.context.scene, frames)[:, [got_names.index(n) for n in names]]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    if fmt != "BVH":  # BVH holds a skeleton only; the others carry the mannequin, skinned
        meshes = [m for m in meshes if m.vertex_groups]  # glTF import adds a bone-shape Icosphere
        assert len(meshes) == 1
        skin = [m for m in meshes[0].modifiers if m.type == "ARMATURE"]
        assert skin and skin[0].object == arms[0]
        np.testing.assert_allclose(_posed_box(bpy, meshes[0], bpy.context.scene, frames[-1]),
                                   expected_box, atol=1e-3)


def test_fbx_per_person_with_meshes(tmp_path, smplx_model_path):
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.exporters import export_people, take_people
    from chromm_addon.body.model_file import load_smplx_model

    bpy.ops.wm.read_factory_settings(use_empty=True)
    take = make_take(T=4, P=2, V=1, N=10)
    take.valid[1, :2] = False  # hidden at the first frames: still exported, keys intact
    collection = build_take(take, name="take", smplx_model=load_smplx_model(smplx_model_path))
    people = take_people(collection)
    paths = export_people(people, tmp_path / "crowd.fbx", "FBX", "UNREAL", per_person=True)
    assert [p.rsplit("/", 1)[-1] for p in map(str, paths)] == [
        f"crowd_person{int(i)}.fbx" for i in take.person_ids]
    assert people[1][0].animation_data.action is not None
    for path in paths:
        arms, meshes = _reimport(bpy, str(path), "FBX", int(take.fps))
        assert len(arms) == 1 and len(meshes) == 1
        assert len(meshes[0].data.vertices) == 10475


def test_unknown_format_and_empty_selection_are_reported(tmp_path):
    from chromm_addon.blender.exporters import export_people
    from chromm_addon.errors import ChrommError

    with pytest.raises(ChrommError, match="unknown export format"):
        export_people([(None, None)], tmp_path / "x.abc", "ABC")
    with pytest.raises(ChrommError, match="nothing to export"):
        export_people([], tmp_path / "x.fbx", "FBX")
