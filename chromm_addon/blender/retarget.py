"""Retarget a CHROMM SMPL-X armature onto Rigify- or Mixamo-named rigs, baked to keys.

Bones are matched by name tables. Each mapped target bone gets the source bone's world rotation
*relative to its rest*: R_target(f) = R_source(f) R_source_rest^T R_target_rest, so the rigs may
differ in bone orientations, object transforms (a Mixamo FBX arrives rotated and at 0.01 scale)
and proportions. The hips also get the pelvis' root motion, scaled by the ratio of hip heights,
so feet stay on the floor. Unmapped target bones keep their rest pose relative to their parent.
"""

import numpy as np

from ..body.skeleton import JOINT_NAMES
from ..errors import ChrommError
from ..geometry.rotations import make_sign_continuous, matrix_to_quaternion
from .animation import animate, vector_channels

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")
_SIDES = (("left", "L", "Left"), ("right", "R", "Right"))


def _rigify_table():
    table = {"pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002", "spine3": "spine.003",
             "neck": "spine.004", "head": "spine.006"}
    for smpl, side, _ in _SIDES:
        table.update({f"{smpl}_collar": f"shoulder.{side}", f"{smpl}_shoulder": f"upper_arm.{side}",
                      f"{smpl}_elbow": f"forearm.{side}", f"{smpl}_wrist": f"hand.{side}",
                      f"{smpl}_hip": f"thigh.{side}", f"{smpl}_knee": f"shin.{side}",
                      f"{smpl}_ankle": f"foot.{side}", f"{smpl}_foot": f"toe.{side}"})
        for finger in _FINGERS:
            stem = "thumb" if finger == "thumb" else f"f_{finger}"
            for i in (1, 2, 3):
                table[f"{smpl}_{finger}{i}"] = f"{stem}.0{i}.{side}"
    return table


def _mixamo_table():
    table = {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2",
             "neck": "Neck", "head": "Head"}
    for smpl, _, side in _SIDES:
        table.update({f"{smpl}_collar": f"{side}Shoulder", f"{smpl}_shoulder": f"{side}Arm",
                      f"{smpl}_elbow": f"{side}ForeArm", f"{smpl}_wrist": f"{side}Hand",
                      f"{smpl}_hip": f"{side}UpLeg", f"{smpl}_knee": f"{side}Leg",
                      f"{smpl}_ankle": f"{side}Foot", f"{smpl}_foot": f"{side}ToeBase"})
        for finger in _FINGERS:
            for i in (1, 2, 3):
                table[f"{smpl}_{finger}{i}"] = f"{side}Hand{finger.capitalize()}{i}"
    return table


BONE_TABLES = {"RIGIFY": _rigify_table(), "MIXAMO": _mixamo_table()}


def _normalise(name, scheme):
    """Bone name as the table spells it: drop a Mixamo namespace or a Rigify DEF-/ORG- prefix."""
    if scheme == "MIXAMO":
        return name.rsplit(":", 1)[-1]
    for prefix in ("DEF-", "ORG-"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def match_bones(target_names, scheme="AUTO"):
    """(scheme, {smplx joint: target bone}) for a target rig's bone names."""
    schemes = list(BONE_TABLES) if scheme == "AUTO" else [scheme]
    best = (None, {})
    for s in schemes:
        inverse = {v: k for k, v in BONE_TABLES[s].items()}
        found = {}
        # Prefer a bone spelt exactly as the table (metarig) over DEF-/ORG- variants.
        for name in sorted(target_names, key=lambda n: n != _normalise(n, s)):
            joint = inverse.get(_normalise(name, s))
            if joint is not None and joint not in found:
                found[joint] = name
        if len(found) > len(best[1]):
            best = (s, found)
    return best


def retarget(source, target, scheme="AUTO", scene=None, min_bones=10):
    """Bake `source` (a CHROMM SMPL-X armature) onto `target` for the scene's frame range.

    Returns (scheme, number of bones mapped). The target gets a new action with quaternion keys
    for every mapped bone and location keys for the hips.
    """
    import bpy

    scene = scene or bpy.context.scene
    if source.type != "ARMATURE" or target.type != "ARMATURE":
        raise ChrommError("retarget needs two armatures: a CHROMM person and a target rig")
    scheme, mapping = match_bones([b.name for b in target.data.bones], scheme)
    if len(mapping) < min_bones or "pelvis" not in mapping:
        raise ChrommError(f"{target.name}: only {len(mapping)} bones match the Rigify or Mixamo "
                          "names (the hips among them are needed); rename the rig's bones")
    frames = np.arange(scene.frame_start, scene.frame_end + 1)
    order = _joint_order(source)
    src_world = _sample_world_matrices(source, scene, frames)[:, order]  # (F, 55, 4, 4)
    src_rest = _world_rest(source)[order]                                # (55, 4, 4)
    tgt_bones = list(target.data.bones)
    index = {b.name: i for i, b in enumerate(tgt_bones)}
    tgt_rest_local = np.array([np.array(b.matrix_local) for b in tgt_bones])  # armature space
    tgt_obj = np.array(target.matrix_world)
    tgt_obj_rot = _rotation_part(tgt_obj)
    tgt_rest_world_rot = tgt_obj_rot @ _rotation_part(tgt_rest_local)

    # Desired armature-space rotation of every mapped target bone, per frame.
    src_idx = {name: j for j, name in enumerate(JOINT_NAMES)}
    want = {}
    for joint, bone in mapping.items():
        j, b = src_idx[joint], index[bone]
        delta = _rotation_part(src_world[:, j]) @ _rotation_part(src_rest[j]).T
        want[b] = np.linalg.inv(tgt_obj_rot) @ delta @ tgt_rest_world_rot[b]

    # Root motion: the hips follow the pelvis, scaled by the ratio of hip heights above the floor.
    hips = index[mapping["pelvis"]]
    src_floor = np.min(src_rest[:, 2, 3])
    tgt_heads_world = (tgt_obj @ tgt_rest_local[:, :, 3].T).T[:, :3]
    scale = (tgt_heads_world[hips, 2] - tgt_heads_world[:, 2].min()) / max(
        src_rest[0, 2, 3] - src_floor, 1e-6)
    hips_world = tgt_heads_world[hips] + scale * (src_world[:, 0, :3, 3] - src_rest[0, :3, 3])
    hips_arm = (np.linalg.inv(tgt_obj) @ np.c_[hips_world, np.ones(len(frames))].T).T[:, :3]

    quats, hips_location = _solve_basis(tgt_bones, index, tgt_rest_local, want, hips, hips_arm)
    channels = []
    for b, q in quats.items():
        name = tgt_bones[b].name
        target.pose.bones[name].rotation_mode = "QUATERNION"
        channels += vector_channels(f'pose.bones["{name}"].rotation_quaternion', q, name)
    hips_name = tgt_bones[hips].name
    channels += vector_channels(f'pose.bones["{hips_name}"].location', hips_location, hips_name)
    if target.animation_data is not None:
        target.animation_data.action = None
    animate(target, f"{target.name}.chromm_retarget", frames, channels)
    return scheme, len(mapping)


def _solve_basis(bones, index, rest, want, hips, hips_arm):
    """Pose-bone basis (quaternions per mapped bone, hips location) reaching `want` in FK order.

    Blender: pose matrix M_b = M_parent (Rest_parent^-1 Rest_b) Basis_b in armature space.
    """
    count = hips_arm.shape[0]
    pose = {}
    quats = {}
    hips_location = None
    for b, bone in enumerate(bones):  # bpy lists parents before children
        if bone.parent is None:
            parent_pose = np.broadcast_to(np.eye(4), (count, 4, 4))
            offset = rest[b]
        else:
            p = index[bone.parent.name]
            parent_pose = pose[p]
            offset = np.linalg.inv(rest[p]) @ rest[b]
        chain = parent_pose @ offset  # the pose matrix with an identity basis
        if b not in want:
            pose[b] = chain
            continue
        target = chain.copy()
        target[:, :3, :3] = want[b]
        if b == hips:
            target[:, :3, 3] = hips_arm
        basis = np.linalg.inv(chain) @ target
        quats[b] = make_sign_continuous(matrix_to_quaternion(basis[:, :3, :3]), axis=0)
        if b == hips:
            hips_location = basis[:, :3, 3]
        pose[b] = target
    return quats, hips_location


def _joint_order(source):
    """Indices of the source's bones in SMPL-X joint order (bpy lists bones depth first)."""
    names = [b.name for b in source.data.bones]
    missing = [j for j in JOINT_NAMES if j not in names]
    if missing:
        raise ChrommError(f"{source.name}: not a CHROMM SMPL-X armature (no bone {missing[0]!r})")
    return np.array([names.index(j) for j in JOINT_NAMES])


def _rotation_part(m):
    """Rotation of (…, 4, 4) transforms with any scale removed (column norms)."""
    r = np.asarray(m)[..., :3, :3]
    return r / np.linalg.norm(r, axis=-2, keepdims=True)


def _world_rest(obj):
    mw = np.array(obj.matrix_world)
    return np.array([mw @ np.array(b.matrix_local) for b in obj.data.bones])


def _sample_world_matrices(obj, scene, frames):
    """(F, bones, 4, 4) world matrices of every pose bone at each frame."""
    count = len(obj.pose.bones)
    out = np.empty((len(frames), count, 4, 4))
    flat = np.empty(count * 16, dtype=np.float32)
    current = scene.frame_current
    for i, f in enumerate(frames):
        scene.frame_set(int(f))
        obj.pose.bones.foreach_get("matrix", flat)
        out[i] = np.array(obj.matrix_world) @ flat.reshape(count, 4, 4).transpose(0, 2, 1)
    scene.frame_set(current)
    return out
