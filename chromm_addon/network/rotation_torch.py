"""Rotation conversions in torch for the network's outputs (batched, differentiable)."""
import torch


def rotation_6d_to_matrix(x):
    """(..., 6) -> (..., 3, 3), Multi-HMR's layout: the first three numbers are the first column,
    the next three the second; Gram-Schmidt, third column = cross product (as roma's
    special_gramschmidt on the (3, 2) matrix)."""
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = a1 / a1.norm(dim=-1, keepdim=True)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / b2.norm(dim=-1, keepdim=True)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_quaternion(m):
    """(..., 3, 3) rotations -> (..., 4) unit quaternions (w, x, y, z) with w >= 0.

    Picks, per matrix, the best-conditioned of the four closed forms (largest denominator).
    """
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2],
                     m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22,
                     m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1],
                     1 - m00 + m11 - m22, m[..., 2, 1] + m[..., 1, 2]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                     m[..., 2, 1] + m[..., 1, 2], 1 - m00 - m11 + m22], -1),
    ], -2)  # (..., 4 candidates, 4); candidate i has 4 q_i^2 at position i
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(-1, keepdim=True)
    q = torch.gather(candidates, -2, best[..., None].expand(best.shape + (4,))).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(m):
    """(..., 3, 3) -> (..., 3) axis-angle with angle in [0, pi] (as roma.rotmat_to_rotvec)."""
    q = matrix_to_quaternion(m)
    sin_half = q[..., 1:].norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    # angle / sin(angle/2) -> 2 as the angle -> 0
    safe = torch.where(sin_half > 1e-7, angle / sin_half.clamp_min(1e-12), torch.full_like(angle, 2.0))
    return q[..., 1:] * safe
