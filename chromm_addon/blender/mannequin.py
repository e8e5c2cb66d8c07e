"""A procedural mannequin per person when no SMPL-X model file is configured.

Armatures do not render, so without the licensed model file a built take would show no people.
The mannequin is generated here from the person's rest skeleton: one ellipsoid per bone segment
(parent joint to child joint, thickness from a table for an average adult, scaled by the
skeleton's height), a sphere for the head and short tips on the fingers. Every solid belongs to exactly one
bone (the segment's parent, whose rotation carries the child joint), with weight 1 in that bone's
vertex group: rigid skinning through the same Armature modifier as the SMPL-X mesh, so it poses,
renders, exports (FBX/glTF/USD as a skinned mesh) and retargets like that mesh.
"""

import numpy as np

from ..body.skeleton import HEAD, JOINT_NAMES, NUM_JOINTS, PARENTS, approximate_rest_joints

# Cross-section radius (m) of the segment ending at each child joint, for the average body of
# `approximate_rest_joints` (about 1.7 m tall).
_RADIUS = {"spine1": 0.12, "spine2": 0.12, "spine3": 0.13, "neck": 0.06, "left_collar": 0.06,
           "right_collar": 0.06, "head": 0.055, "left_hip": 0.09, "right_hip": 0.09,
           "left_knee": 0.075, "right_knee": 0.075, "left_ankle": 0.055, "right_ankle": 0.055,
           "left_foot": 0.045, "right_foot": 0.045, "left_shoulder": 0.055, "right_shoulder": 0.055,
           "left_elbow": 0.05, "right_elbow": 0.05, "left_wrist": 0.04, "right_wrist": 0.04,
           "jaw": 0.03}
_PALM_RADIUS, _FINGER_RADIUS, _HEAD_RADIUS = 0.02, 0.009, 0.1
_SKIPPED = {"left_eye_smplhf", "right_eye_smplhf"}
_TORSO = {"spine1", "spine2", "spine3", "left_hip", "right_hip"}
_RINGS, _SEGMENTS = 8, 12  # UV sphere resolution of each solid


def _unit_sphere():
    """(V, 3) vertices and (F, 3) triangles of a UV sphere of radius 1 around the x axis."""
    theta = np.linspace(0.0, np.pi, _RINGS + 1)[1:-1]
    phi = np.linspace(0.0, 2 * np.pi, _SEGMENTS, endpoint=False)
    rings = np.stack([np.repeat(np.cos(theta), _SEGMENTS),
                      np.outer(np.sin(theta), np.cos(phi)).ravel(),
                      np.outer(np.sin(theta), np.sin(phi)).ravel()], axis=1)
    verts = np.concatenate([[[1.0, 0, 0]], rings, [[-1.0, 0, 0]]])
    last = len(verts) - 1
    faces = []
    for s in range(_SEGMENTS):
        n = (s + 1) % _SEGMENTS
        faces.append((0, 1 + n, 1 + s))
        for r in range(_RINGS - 2):
            a, b = 1 + r * _SEGMENTS + s, 1 + r * _SEGMENTS + n
            c, d = a + _SEGMENTS, b + _SEGMENTS
            faces += [(a, b, d), (a, d, c)]
        base = 1 + (_RINGS - 2) * _SEGMENTS
        faces.append((last, base + s, base + n))
    return verts, np.array(faces, dtype=np.int32)


UNIT_VERTS, UNIT_FACES = _unit_sphere()


REFERENCE_SPAN_M = float(np.ptp(approximate_rest_joints()[:, 1]))  # feet to head joint, SMPL-X +Y up


def _frame(axis):
    """A rotation whose first column is the unit `axis`."""
    u = axis / np.linalg.norm(axis)
    helper = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    v = np.cross(u, helper)
    v /= np.linalg.norm(v)
    return np.stack([u, v, np.cross(u, v)], axis=1)


def mannequin_solids(rest):
    """[(bone index, centre (3,), rotation (3, 3), semi-axes (3,))] for a (55, 3) rest skeleton in
    Blender's upright coordinates (metres)."""
    scale = float(np.clip(np.ptp(rest[:, 2]) / REFERENCE_SPAN_M, 0.3, 3.0))
    solids = []
    for j in range(1, NUM_JOINTS):
        name, p = JOINT_NAMES[j], int(PARENTS[j])
        if name in _SKIPPED:
            continue
        a, b = rest[p], rest[j]
        length = float(np.linalg.norm(b - a))
        if length < 1e-4:
            continue
        if name in _RADIUS:
            r = _RADIUS[name] * scale
        elif PARENTS[j] in (20, 21):  # wrist -> first finger joint: the palm
            r = _PALM_RADIUS * scale
        else:
            r = _FINGER_RADIUS * scale
        if name not in _TORSO:  # limbs no thicker than they are long
            r = min(r, 0.6 * length)
        solids.append((p, 0.5 * (a + b), _frame(b - a), np.array([0.5 * length + 0.5 * r, r, r])))
        if not np.any(PARENTS == j) and name.endswith("3"):  # fingertip beyond the last joint
            solids.append((j, b + 0.4 * (b - a), _frame(b - a), np.array([0.5 * length, r, r])))
    up = np.array([0.0, 0.0, 1.0])
    head_r = _HEAD_RADIUS * scale
    head_axes = np.array([head_r, 0.85 * head_r, head_r])
    solids.append((HEAD, rest[HEAD] + 0.8 * head_r * up, np.eye(3), head_axes))
    return solids


def mannequin_geometry(rest):
    """Vertices (V, 3), triangles (F, 3) and the bone of every vertex (V,) for a rest skeleton."""
    verts, faces, bones = [], [], []
    for i, (bone, centre, rot, axes) in enumerate(mannequin_solids(rest)):
        verts.append((UNIT_VERTS * axes) @ rot.T + centre)
        faces.append(UNIT_FACES + i * len(UNIT_VERTS))
        bones.append(np.full(len(UNIT_VERTS), bone, dtype=np.int32))
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(bones)


def build_mannequin(build, name, rest, arm_obj):
    """A rigidly skinned mannequin mesh object for `arm_obj` (rest: (55, 3) upright joints)."""
    import bpy

    verts, faces, bones = mannequin_geometry(rest)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(verts))
    mesh.attributes["position"].data.foreach_set("vector", verts.astype(np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()
    mesh.shade_smooth()
    obj = build.new_object(name, mesh)
    for bone in np.unique(bones):
        group = obj.vertex_groups.new(name=JOINT_NAMES[bone])
        group.add(np.flatnonzero(bones == bone).tolist(), 1.0, "REPLACE")
    obj.parent = arm_obj
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = arm_obj
    modifier.use_vertex_groups = True
    return obj
