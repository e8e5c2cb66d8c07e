"""SMPL-X joints of Multi-HMR's people, in numpy (no torch): the pelvis from the head.

Multi-HMR places a body by its head joint: it poses SMPL-X with zero global orientation, rotates
about the pelvis by the global orientation, then moves the rotated head joint to `head_cam`
(upstream SMPL_Layer with person_center='head'). The pelvis in the camera frame is therefore
head_cam - R_global (J_head - J_pelvis), with the joints of the zero-orientation posed body.
Multi-HMR's hands are full axis-angle with flat_hand_mean=True.
"""
import numpy as np

from ..body.lbs import forward_kinematics, full_pose_matrices
from ..geometry.rotations import axis_angle_to_matrix

HEAD_JOINT = 15
PELVIS_JOINT = 0


def posed_joints_zero_orient(model, rotvec, betas, expression):
    """(n, 55, 3) joints of bodies posed by Multi-HMR's 53 rotations with the root unrotated.

    rotvec (n, 53, 3), betas (n, B), expression (n, E); the rest joints are regressed from the
    template with shape and expression applied, as the smplx package does.
    """
    rotvec = np.asarray(rotvec, dtype=np.float64)
    n = rotvec.shape[0]
    rot = full_pose_matrices(np.zeros((n, 3)), rotvec[:, 1:22], rotvec[:, 52], rotvec[:, 22:37], rotvec[:, 37:52])
    rest = np.stack([model.J_regressor @ model.shaped_vertices(b, e) for b, e in zip(betas, expression)]) \
        if n else np.zeros((0, 55, 3))
    return forward_kinematics(rot, rest)[1]


def pelvis_from_head(model, head_cam, rotvec, betas, expression):
    """(n, 3) pelvis joint in the camera frame for people placed by their head joint `head_cam`."""
    joints = posed_joints_zero_orient(model, rotvec, betas, expression)
    R = axis_angle_to_matrix(np.asarray(rotvec, dtype=np.float64)[:, 0])
    offset = joints[:, HEAD_JOINT] - joints[:, PELVIS_JOINT]
    return np.asarray(head_cam, dtype=np.float64) - np.einsum("nij,nj->ni", R, offset)
