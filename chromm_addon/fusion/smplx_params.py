"""Head-anchored bodies -> SMPL-X `transl` (exact, through the model's own kinematics).

The network anchors a body at its head joint; SMPL-X rotates the body about the rest pelvis and
then adds `transl`. So the head joint of the smplx forward pass is FK_head(pose, rest) + transl,
and transl = head_world - FK_head(pose, rest), with rest joints from the person's betas and
that timestep's expression (smplx regresses joints after both blend shapes).
"""

import numpy as np

from ..body.skeleton import HEAD
from .body import joint_positions


def transl_from_head(head_world, rot, rest):
    """(..., 3) SMPL-X transl putting the head joint at `head_world`.

    rot (..., 55, 3, 3) joint rotations with the world root orientation, rest (..., 55, 3).
    """
    head_fk = joint_positions(rot, rest, [HEAD])[..., 0, :]
    return np.asarray(head_world, dtype=np.float64) - head_fk
