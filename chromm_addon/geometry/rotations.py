"""Batched rotation conversions in numpy (float64 inside): axis-angle, matrices, quaternions.

Axis-angle in files, matrices inside, quaternions (w, x, y, z) only at the Blender edge.
"""

import numpy as np


def axis_angle_to_matrix(rotvec):
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (Rodrigues, stable near zero)."""
    r = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1)[..., None, None]
    k = np.zeros(r.shape[:-1] + (3, 3))
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    k[..., 0, 1], k[..., 0, 2] = -z, y
    k[..., 1, 0], k[..., 1, 2] = z, -x
    k[..., 2, 0], k[..., 2, 1] = -y, x
    small = theta < 1e-6
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta**2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta**2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    return np.eye(3) + a * k + b * (k @ k)


def matrix_to_quaternion(matrix):
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0."""
    m = np.asarray(matrix, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Shepperd's method: pick the largest of the four candidate denominators per element.
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                     1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=-1)
    which = np.argmax(cand, axis=-1)
    q = np.empty(m.shape[:-2] + (4,))
    s = np.sqrt(np.maximum(np.take_along_axis(cand, which[..., None], -1)[..., 0], 1e-300)) * 2
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    options = [
        np.stack([s / 4, d21 / s, d02 / s, d10 / s], -1),
        np.stack([d21 / s, s / 4, s10 / s, s02 / s], -1),
        np.stack([d02 / s, s10 / s, s / 4, s21 / s], -1),
        np.stack([d10 / s, s02 / s, s21 / s, s / 4], -1),
    ]
    for i, opt in enumerate(options):
        q = np.where((which == i)[..., None], opt, q)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(quat):
    """(..., 4) quaternions (w, x, y, z), any norm -> (..., 3, 3)."""
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def quaternion_to_axis_angle(quat):
    """(..., 4) quaternions (w, x, y, z) -> (..., 3) axis-angle with angle in [0, pi]."""
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1)
    angle = 2 * np.arctan2(s, q[..., 0])
    small = s < 1e-8
    scale = np.where(small, 2.0 / np.maximum(q[..., 0], 1e-12), angle / np.where(small, 1.0, s))
    return v * scale[..., None]


def matrix_to_axis_angle(matrix):
    """(..., 3, 3) -> (..., 3) axis-angle, angle in [0, pi]."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def axis_angle_to_quaternion(rotvec):
    """(..., 3) axis-angle -> (..., 4) quaternion (w, x, y, z)."""
    r = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    half = theta / 2
    small = theta < 1e-8
    k = np.where(small, 0.5 - theta**2 / 48.0, np.sin(half) / np.where(small, 1.0, theta))
    return np.concatenate([np.cos(half), r * k], axis=-1)


def make_sign_continuous(quat, axis=0):
    """Flip quaternions along `axis` (time) so consecutive ones have a non-negative dot product."""
    q = np.moveaxis(np.array(quat, dtype=np.float64), axis, 0)
    if len(q) > 1:
        dots = np.sum(q[1:] * q[:-1], axis=-1)
        flips = np.cumsum(dots < 0, axis=0) % 2
        q[1:] *= np.where(flips[..., None] == 1, -1.0, 1.0)
    return np.moveaxis(q, 0, axis)


def rotation_6d_to_matrix(x):
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on two columns (Zhou et al.)."""
    x = np.asarray(x, dtype=np.float64)
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    b2 = a2 - np.sum(b1 * a2, -1, keepdims=True) * b1
    b2 = b2 / np.linalg.norm(b2, axis=-1, keepdims=True)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def mean_rotation(matrices, weights=None, axis=0, iters=8):
    """Weighted Karcher (geodesic L2) mean of rotations along `axis`; (..., 3, 3) result.

    Averaged poses are rotations, not raw axis-angle averages; see `karcher_mean_quat`.
    """
    r = np.moveaxis(np.asarray(matrices, dtype=np.float64), axis, 0)
    w = np.ones(r.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.broadcast_to(w.reshape(w.shape + (1,) * (r.ndim - 2 - w.ndim)), r.shape[:-2])
    return quaternion_to_matrix(karcher_mean_quat(matrix_to_quaternion(r), w, iters=iters, tol=1e-10))


def quat_multiply(a, b):
    """Hamilton product of (..., 4) quaternions (w, x, y, z)."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_conjugate(q):
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def karcher_mean_quat(quats, weights, iters=4, tol=1e-8):
    """Weighted Karcher mean along axis 0 of (N, ..., 4) unit quaternions; weights (N, ...).

    Samples with weight 0 are ignored. Starts from the sign-aligned weighted average (the chordal
    mean) and takes Gauss-Newton steps in the tangent space.
    """
    q = np.asarray(quats, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    ref = np.take_along_axis(q, np.argmax(w, axis=0)[None, ..., None], axis=0)[0]
    q = q * np.where(np.sum(q * ref, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    wsum = np.maximum(w.sum(0), 1e-12)[..., None]
    mean = (w[..., None] * q).sum(0)
    mean /= np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)
    for _ in range(iters):
        delta = quaternion_to_axis_angle(quat_multiply(quat_conjugate(mean)[None], q))
        step = (w[..., None] * delta).sum(0) / wsum
        mean = quat_multiply(mean, axis_angle_to_quaternion(step))
        mean /= np.linalg.norm(mean, axis=-1, keepdims=True)
        if np.max(np.abs(step), initial=0.0) < tol:
            break
    return mean


def project_to_rotation(m):
    """Nearest rotation matrix (Frobenius) to each (..., 3, 3) matrix, via SVD."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[..., :, -1] *= d[..., None]
    return u @ vt


def rotation_angle(matrix):
    """(..., 3, 3) -> (...,) rotation angle in radians."""
    tr = np.trace(np.asarray(matrix), axis1=-2, axis2=-1)
    return np.arccos(np.clip((tr - 1) / 2, -1.0, 1.0))
