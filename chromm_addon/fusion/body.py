"""The body kinematics the test-time modules need: rest joints and forward kinematics of a few joints.

`RestSkeleton` gives the SMPL-X rest joints as the model does (joint regressor on the template
with shape and expression blend shapes: J = J0 + Jb @ betas + Je @ expression), precomputed as
linear maps so it costs nothing per frame. Without a model file it falls back to the approximate
neutral skeleton of `body.skeleton`, the same for every shape.
"""

import numpy as np

from ..body.skeleton import NUM_JOINTS, PARENTS, approximate_rest_joints
from ..geometry.rotations import axis_angle_to_matrix

# SMPL-X joint index of each of a views file's 53 rotations (root, body 21, left hand 15,
# right hand 15, jaw).
DET_TO_JOINT = np.concatenate([[0], np.arange(1, 22), np.arange(25, 40), np.arange(40, 55), [22]])


class RestSkeleton:
    """Rest joints as a linear function of betas and expression (float64)."""

    def __init__(self, smplx_model=None):
        self.from_model = smplx_model is not None
        if smplx_model is None:
            self.j0 = approximate_rest_joints()
            self.j_betas = np.zeros((NUM_JOINTS, 3, 0))
            self.j_expr = np.zeros((NUM_JOINTS, 3, 0))
        else:
            reg = smplx_model.J_regressor
            self.j0 = reg @ smplx_model.v_template
            self.j_betas = np.einsum("jv,vck->jck", reg, smplx_model.shapedirs)
            self.j_expr = np.einsum("jv,vck->jck", reg, smplx_model.exprdirs)

    def joints(self, betas=None, expression=None):
        """(..., 55, 3) rest joints; betas (..., B), expression (..., E) or None."""
        out = self.j0
        batch = ()
        for coeffs, dirs in ((betas, self.j_betas), (expression, self.j_expr)):
            if coeffs is None:
                continue
            coeffs = np.asarray(coeffs, dtype=np.float64)
            batch = np.broadcast_shapes(batch, coeffs.shape[:-1])
            k = min(coeffs.shape[-1], dirs.shape[2])
            if k:
                out = out + np.einsum("jck,...k->...jc", dirs[:, :, :k], coeffs[..., :k])
        return np.broadcast_to(out, batch + self.j0.shape)


def chain_joints(wanted):
    """Sorted joint indices that the FK of `wanted` joints needs (the joints and their ancestors)."""
    need = set()
    for j in np.atleast_1d(wanted):
        j = int(j)
        while j >= 0 and j not in need:
            need.add(j)
            j = int(PARENTS[j])
    return sorted(need)


def joint_positions(rot, rest, wanted):
    """Positions (..., len(wanted), 3) of some joints after FK, root at its rest position.

    rot (..., J, 3, 3) local rotations in SMPL-X joint order (J = 55, or fewer when the chains
    need no more), rest (..., 55, 3) rest joints. Equal to `body.lbs.forward_kinematics` there.
    """
    need = chain_joints(wanted)
    rest = np.broadcast_to(rest, rot.shape[:-3] + np.shape(rest)[-2:])
    g_rot, g_pos = {}, {}
    for j in need:
        p = int(PARENTS[j])
        if p < 0:
            g_rot[j] = rot[..., j, :, :]
            g_pos[j] = rest[..., j, :]
        else:
            g_rot[j] = g_rot[p] @ rot[..., j, :, :]
            offset = rest[..., j, :] - rest[..., p, :]
            g_pos[j] = g_pos[p] + np.einsum("...ij,...j->...i", g_rot[p], offset)
    return np.stack([g_pos[int(j)] for j in np.atleast_1d(wanted)], axis=-2)


def det_rotations_to_joints(rotmats):
    """(..., 53, 3, 3) rotations in the views file's order -> (..., 55, 3, 3) SMPL-X joint order.

    The eyes, which the network does not predict, are the identity.
    """
    out = np.broadcast_to(np.eye(3), rotmats.shape[:-3] + (NUM_JOINTS, 3, 3)).copy()
    out[..., DET_TO_JOINT, :, :] = rotmats
    return out


def rotvec53_to_joints(rotvec):
    """(..., 53, 3) axis-angle in the views file's order -> (..., 55, 3, 3)."""
    return det_rotations_to_joints(axis_angle_to_matrix(rotvec))
