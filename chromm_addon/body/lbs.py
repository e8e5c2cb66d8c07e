"""SMPL-X forward kinematics and linear blend skinning in numpy (float64).

Mirrors the `smplx` package's forward pass (shape and expression blend shapes, joint regression,
pose correctives, LBS) so the test-time modules and the Blender builder need no torch.
"""

import numpy as np

from ..geometry.rotations import axis_angle_to_matrix
from .skeleton import PARENTS


def full_pose_matrices(global_orient, body_pose, jaw_pose, left_hand_pose, right_hand_pose,
                       leye_pose=None, reye_pose=None, hands_mean=None):
    """(..., 55, 3, 3) joint rotations in SMPL-X joint order from axis-angle parts.

    `hands_mean` is (left45, right45) added to the hand poses, as smplx does when
    flat_hand_mean is False; None for flat_hand_mean=True.
    """
    batch = np.shape(global_orient)[:-1]
    zeros = np.zeros(batch + (3,))
    lh = np.asarray(left_hand_pose, dtype=np.float64).reshape(batch + (15, 3))
    rh = np.asarray(right_hand_pose, dtype=np.float64).reshape(batch + (15, 3))
    if hands_mean is not None:
        lh = lh + np.asarray(hands_mean[0]).reshape(15, 3)
        rh = rh + np.asarray(hands_mean[1]).reshape(15, 3)
    parts = [np.asarray(global_orient, dtype=np.float64)[..., None, :],
             np.asarray(body_pose, dtype=np.float64).reshape(batch + (21, 3)),
             np.asarray(jaw_pose, dtype=np.float64)[..., None, :],
             (zeros if leye_pose is None else np.asarray(leye_pose))[..., None, :],
             (zeros if reye_pose is None else np.asarray(reye_pose))[..., None, :], lh, rh]
    return axis_angle_to_matrix(np.concatenate(parts, axis=-2))


def forward_kinematics(rot, rest_joints, parents=PARENTS, joints=None):
    """World rotations and positions of every joint, root at its rest position.

    rot (..., 55, 3, 3) local rotations, rest_joints (..., 55, 3). `joints`: only these joints
    (ascending, each after its parent, the root first) are computed; the others are left zero.
    Returns (G_rot (..., 55, 3, 3), G_pos (..., 55, 3)).
    """
    rest_joints = np.broadcast_to(rest_joints, rot.shape[:-2] + (3,))
    g_rot = np.zeros_like(rot) if joints is not None else np.empty_like(rot)
    g_pos = np.zeros(rot.shape[:-2] + (3,))
    g_rot[..., 0, :, :] = rot[..., 0, :, :]
    g_pos[..., 0, :] = rest_joints[..., 0, :]
    for j in (range(1, len(parents)) if joints is None else [j for j in joints if j > 0]):
        p = parents[j]
        g_rot[..., j, :, :] = g_rot[..., p, :, :] @ rot[..., j, :, :]
        offset = rest_joints[..., j, :] - rest_joints[..., p, :]
        g_pos[..., j, :] = g_pos[..., p, :] + np.einsum("...ij,...j->...i", g_rot[..., p, :, :], offset)
    return g_rot, g_pos


def posed_joints(model_or_rest, betas, rot, transl):
    """(..., 55, 3) posed joints in world: FK on the shaped rest skeleton plus transl.

    `model_or_rest` is an SmplxModel (rest joints from J_regressor on the shaped template) or a
    (55, 3) rest skeleton used as is.
    """
    if hasattr(model_or_rest, "rest_joints"):
        rest = model_or_rest.rest_joints(betas)
    else:
        rest = np.asarray(model_or_rest, dtype=np.float64)
    _, pos = forward_kinematics(rot, rest)
    return pos + np.asarray(transl, dtype=np.float64)[..., None, :]


def skin(model, betas, expression, rot, transl, pose_correctives=True):
    """Posed vertices (Nv, 3) for one body: the smplx forward pass in numpy. rot (55, 3, 3)."""
    # smplx regresses the joints from the template with shape *and* expression applied.
    v = model.shaped_vertices(betas, expression)
    rest = model.J_regressor @ v
    if pose_correctives:
        feat = (rot[1:] - np.eye(3)).reshape(-1)
        v = v + model.posedirs @ feat
    g_rot, g_pos = forward_kinematics(rot, rest)
    # Relative transforms: world transform of each joint times its inverse rest transform.
    t = g_pos - np.einsum("jik,jk->ji", g_rot, rest)
    a_rot = np.einsum("vj,jik->vik", model.weights, g_rot)
    a_t = model.weights @ t
    return np.einsum("vik,vk->vi", a_rot, v) + a_t + np.asarray(transl, dtype=np.float64)
