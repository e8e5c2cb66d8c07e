"""Retargeting onto generated Rigify- and Mixamo-named rigs, checked geometrically: every limb
segment of the target points where the source's does, at every frame, and the hips carry the
root motion scaled to the target's size."""

import numpy as np
import pytest

from take_factory import make_take

pytestmark = pytest.mark.blender


def _make_rig(bpy, source, names, scale, extra_root, obj_rotation_x=0.0, obj_scale=1.0):
    """A rig on the source's rest joints (scaled about the floor), bones along the limbs."""
    from chromm_addon.body.skeleton import JOINT_NAMES, PARENTS

    rest = np.array([tuple(source.matrix_world @ source.data.bones[j].head_local) for j in JOINT_NAMES])
    floor = rest[:, 2].min()
    heads = rest.copy()
    heads[:, 2] -= floor
    heads *= scale
    arm = bpy.data.armatures.new("rig")
    obj = bpy.data.objects.new("rig", arm)
    bpy.context.scene.collection.objects.link(obj)
    obj.rotation_euler.x = obj_rotation_x
    obj.scale = (obj_scale,) * 3
    bpy.context.view_layer.update()
    to_local = np.linalg.inv(np.array(obj.matrix_world))
    local = (to_local @ np.c_[heads, np.ones(len(heads))].T).T[:, :3]
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    made = {}
    if extra_root:
        root = arm.edit_bones.new("root")
        root.head, root.tail = (0, 0, 0), (0, 0.3 / obj_scale, 0)
    for j, joint in enumerate(JOINT_NAMES):
        if joint not in names:
            continue
        bone = arm.edit_bones.new(names[joint])
        children = [c for c in np.flatnonzero(PARENTS == j) if JOINT_NAMES[c] in names]
        bone.head = local[j]
        tail = local[children].mean(0) if children else local[j] + (local[j] - local[PARENTS[j]]) * 0.5
        bone.tail = tail if np.linalg.norm(tail - local[j]) > 1e-4 else local[j] + (0, 0, 0.05)
        p = PARENTS[j]
        while p >= 0 and JOINT_NAMES[p] not in names:
            p = PARENTS[p]
        if p >= 0:
            bone.parent = made[JOINT_NAMES[p]]
        elif extra_root:
            bone.parent = arm.edit_bones["root"]
        made[joint] = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _heads(obj, scene, frames, names):
    out = []
    for f in frames:
        scene.frame_set(int(f))
        out.append([tuple(obj.matrix_world @ obj.pose.bones[n].head) for n in names])
    return np.array(out)


@pytest.mark.parametrize("scheme", ["RIGIFY", "MIXAMO"])
def test_retarget_follows_every_limb_and_the_root(scheme):
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.exporters import take_people
    from chromm_addon.blender.retarget import BONE_TABLES, retarget
    from chromm_addon.body.skeleton import JOINT_NAMES, PARENTS

    bpy.ops.wm.read_factory_settings(use_empty=True)
    take = make_take(T=5, P=1, V=1, N=10)
    source = take_people(build_take(take, name="take"))[0][0]
    table = dict(BONE_TABLES[scheme])
    if scheme == "MIXAMO":
        table = {k: f"mixamorig:{v}" for k, v in table.items()}
        rig = _make_rig(bpy, source, table, 1.15, False, obj_rotation_x=np.pi / 2, obj_scale=0.01)
    else:
        rig = _make_rig(bpy, source, table, 0.9, True)  # under an unmapped "root" bone
    used, count = retarget(source, rig)
    assert used == scheme and count == len(table)

    scene = bpy.context.scene
    frames = np.arange(scene.frame_start, scene.frame_end + 1)
    joints = [j for j in JOINT_NAMES if j in table]
    src = _heads(source, scene, frames, joints)
    tgt = _heads(rig, scene, frames, [table[j] for j in joints])
    for i, j in enumerate(joints):
        p = PARENTS[JOINT_NAMES.index(j)]
        while p >= 0 and JOINT_NAMES[p] not in table:
            p = PARENTS[p]
        if p < 0:
            continue
        k = joints.index(JOINT_NAMES[p])
        s = src[:, i] - src[:, k]
        t = tgt[:, i] - tgt[:, k]
        cos = np.sum(s * t, -1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(t, axis=-1)
        assert np.all(cos > 1 - 1e-6), (j, cos)
    # Root motion: hips displacement = pelvis displacement times the size ratio.
    scale = 1.15 if scheme == "MIXAMO" else 0.9
    hips = joints.index("pelvis")
    np.testing.assert_allclose(tgt[:, hips] - tgt[0, hips], scale * (src[:, hips] - src[0, hips]),
                               atol=1e-4)


def test_retarget_refuses_a_rig_with_unknown_names():
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.exporters import take_people
    from chromm_addon.blender.retarget import retarget
    from chromm_addon.errors import ChrommError

    bpy.ops.wm.read_factory_settings(use_empty=True)
    source = take_people(build_take(make_take(T=2, P=1, V=1, N=5), name="take"))[0][0]
    rig = _make_rig(bpy, source, {"pelvis": "Bone", "spine1": "Bone.001"}, 1.0, False)
    with pytest.raises(ChrommError, match="bones match"):
        retarget(source, rig)
