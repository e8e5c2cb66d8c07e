"""Analytic two-bone leg IK on the SMPL-X skeleton (numpy, batched over any leading axes).

Written here rather than taken from a library: the solve is a dozen lines of closed-form
geometry on SMPL-X's own joint chain (hip, knee, ankle), and the libraries that do IK in Python
either need Blender's armatures or solve generic chains iteratively.

`solve_leg` places the ankle of one leg exactly at a target and gives the foot a target world
orientation by changing only three local rotations: the hip (any rotation), the knee (a hinge
about its local X axis, flexion positive) and the ankle. The knee bends in the plane that holds
the foot's own lateral axis, so it points over the toes. Targets out of reach are clamped to the
nearest reachable distance along the same direction (the caller can lower the root instead).
"""

import numpy as np

from .lbs import forward_kinematics

# hip, knee, ankle, foot joint indices per side
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))
LEFT, RIGHT = 0, 1
LEG_CHAIN = (0, 1, 2, 4, 5, 7, 8, 10, 11)  # pelvis and both legs: what the solve needs


def leg_kinematics(rot, rest):
    """`forward_kinematics` of the pelvis and legs only (other joints zero)."""
    return forward_kinematics(rot, rest, joints=LEG_CHAIN)


def _rx(theta):
    c, s = np.cos(theta), np.sin(theta)
    one, zero = np.ones_like(theta), np.zeros_like(theta)
    return np.stack([np.stack([one, zero, zero], -1), np.stack([zero, c, -s], -1),
                     np.stack([zero, s, c], -1)], -2)


def _frame(primary, secondary):
    """(..., 3, 3) orthonormal frames whose columns are primary, secondary (made orthogonal),
    and their cross product."""
    e1 = primary / np.linalg.norm(primary, axis=-1, keepdims=True)
    e2 = secondary - np.sum(secondary * e1, -1, keepdims=True) * e1
    e2 = e2 / np.maximum(np.linalg.norm(e2, axis=-1, keepdims=True), 1e-12)
    return np.stack([e1, e2, np.cross(e1, e2)], -1)


def flat_foot_rotation(yaw):
    """(..., 3, 3) world orientation of a flat SMPL-X frame facing `yaw` (radians from +X):
    Rz(yaw + 90 deg) Rx(90 deg), as SMPL-X's rest frame has +Y up and +Z forward, the world Z up."""
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw + np.pi / 2), np.sin(yaw + np.pi / 2)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    rz = np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1),
                   np.stack([zero, zero, one], -1)], -2)
    return rz @ _rx(np.full(yaw.shape, np.pi / 2))


def knee_coefficients(rest, side):
    """(base, amplitude, phase) with |hip->ankle|^2 = base + 2 amplitude cos(theta - phase) for a
    knee rotation Rx(theta); rest (..., 55, 3)."""
    hip, knee, ankle, _ = LEGS[side]
    u1 = rest[..., knee, :] - rest[..., hip, :]
    u2 = rest[..., ankle, :] - rest[..., knee, :]
    a = u1[..., 1] * u2[..., 1] + u1[..., 2] * u2[..., 2]
    b = u1[..., 2] * u2[..., 1] - u1[..., 1] * u2[..., 2]
    base = np.sum(u1 * u1, -1) + np.sum(u2 * u2, -1) + 2 * u1[..., 0] * u2[..., 0]
    return base, np.hypot(a, b), np.arctan2(b, a)


def leg_reach(rest, side, fraction=1.0):
    """Longest hip-ankle distance the leg reaches (the knee straight), times `fraction`."""
    base, amp, _ = knee_coefficients(rest, side)
    return fraction * np.sqrt(base + 2 * amp)


def hip_positions(rot, rest, transl):
    """(..., 2, 3) world hip positions (left, right) of posed bodies."""
    _, pos = leg_kinematics(rot, rest)
    return pos[..., [LEGS[0][0], LEGS[1][0]], :] + np.asarray(transl)[..., None, :]


def solve_leg(rot, rest, transl, side, ankle_target, foot_rot):
    """Local rotations (..., 55, 3, 3) with one leg reaching `ankle_target` (..., 3) world, its
    foot (ankle joint frame) at world orientation `foot_rot` (..., 3, 3); other joints unchanged.

    rot (..., 55, 3, 3) local rotations, rest (..., 55, 3) rest joints, transl (..., 3).
    """
    hip, knee, ankle, _ = LEGS[side]
    rot = np.array(rot, dtype=np.float64)
    rest = np.broadcast_to(rest, rot.shape[:-2] + (3,))
    g_rot, g_pos = leg_kinematics(rot, rest)
    hip_world = g_pos[..., hip, :] + np.asarray(transl, dtype=np.float64)
    parent_rot = g_rot[..., 0, :, :]  # the hips' parent is the pelvis

    base, amp, phase = knee_coefficients(rest, side)
    w = np.asarray(ankle_target, dtype=np.float64) - hip_world
    dist2 = np.sum(w * w, -1)
    cos = np.clip((dist2 - base) / np.maximum(2 * amp, 1e-12), -1.0 + 1e-9, 1.0)
    theta = phase + np.arccos(cos)  # the flexing root: the knee bends forward
    knee_rot = _rx(theta)

    u1 = rest[..., knee, :] - rest[..., hip, :]
    u2 = rest[..., ankle, :] - rest[..., knee, :]
    v = u1 + np.einsum("...ij,...j->...i", knee_rot, u2)  # hip -> ankle in the thigh frame
    axis_local = np.broadcast_to(np.array([1.0, 0.0, 0.0]), v.shape)
    axis_world = np.asarray(foot_rot, dtype=np.float64)[..., :, 0]  # the foot's lateral axis
    hip_rot_world = _frame(w, axis_world) @ np.swapaxes(_frame(v, axis_local), -1, -2)

    rot[..., hip, :, :] = np.swapaxes(parent_rot, -1, -2) @ hip_rot_world
    rot[..., knee, :, :] = knee_rot
    rot[..., ankle, :, :] = np.swapaxes(hip_rot_world @ knee_rot, -1, -2) @ foot_rot
    return rot
