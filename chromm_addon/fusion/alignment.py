"""Gravity and floor: rotate the world so up is +Z and translate it so the floor is z = 0.

Up comes from the people and the scene. People: the mean pelvis->head direction of all fused
bodies (those within 30 degrees of the mean, iterated), refined by the plane
through the lowest foot joint of each body when the people cover enough ground. Scene: the
dominant plane of the scene points (RANSAC) whose normal is within `plane_max_tilt_rad` of the
people's up and whose height is within `plane_max_offset_m` of their feet; when one is found it
gives both the up direction and the floor height (the points are far more numerous than the
feet). Otherwise the floor is the median height of the lowest foot joint minus the foot joint's
height above the sole (`foot_clearance_m`, from the model's rest mesh when a model file is
given). The world is then centred on the people horizontally.
"""

import dataclasses

import numpy as np

from ..body.skeleton import HEAD, PELVIS
from ..options import FloorOptions  # noqa: F401 (declared in the options schema)
from .body import joint_positions

FOOT_JOINTS = (7, 8, 10, 11)  # ankles and feet
DEFAULT_FOOT_CLEARANCE_M = 0.05  # approximate skeleton: foot joints above the sole


@dataclasses.dataclass
class FloorFit:
    rotation: np.ndarray      # (3, 3) world rotation, up -> +Z
    translation: np.ndarray   # (3,) applied after the rotation
    up_source: str            # "scene plane", "feet plane", "people" or "none"
    floor_source: str         # "scene plane", "feet" or "none"

    def apply(self, points):
        return np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation


def rotation_between(a, b):
    """The smallest rotation taking unit vector a to unit vector b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1 + 1e-12:  # opposite: half turn about any axis orthogonal to a
        axis = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def body_joints_world(head, pose, rest, joints):
    """World positions (K, len(joints), 3) of some joints of head-anchored bodies."""
    wanted = list(joints) + [HEAD]
    pos = joint_positions(pose, rest, wanted)
    return head[:, None] + pos[:, :-1] - pos[:, -1:]


def robust_mean_direction(dirs, max_angle=0.52, iters=3):
    """Mean unit direction of (K, 3) vectors, iteratively ignoring those more than `max_angle`
    (30 degrees) from the current mean (people bending or lying)."""
    dirs = dirs / np.maximum(np.linalg.norm(dirs, axis=-1, keepdims=True), 1e-12)
    mean = dirs.mean(0)
    for _ in range(iters):
        mean /= max(np.linalg.norm(mean), 1e-12)
        near = dirs @ mean >= np.cos(max_angle)
        mean = dirs[near].mean(0) if near.sum() >= 3 else dirs.mean(0)
    return mean / max(np.linalg.norm(mean), 1e-12)


def fit_plane(points):
    """Centroid and unit normal (smallest principal direction) of (N, 3) points."""
    centroid = points.mean(0)
    _, s, vt = np.linalg.svd(points - centroid, full_matrices=False)
    return centroid, vt[-1], s


def ransac_floor(points, up, foot_height, opts, seed=0):
    """Normal (towards `up`) and height along it of the dominant floor-like plane, or None."""
    rng = np.random.default_rng(seed)
    if len(points) > opts.ransac_max_points:
        points = points[rng.choice(len(points), opts.ransac_max_points, replace=False)]
    if len(points) < max(opts.plane_min_points, 3):
        return None
    tri = points[rng.integers(0, len(points), size=(opts.ransac_hypotheses, 3))]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normal, axis=-1)
    good = norm > 1e-9
    normal = normal[good] / norm[good, None]
    normal *= np.sign(normal @ up)[:, None]
    offset = np.einsum("hi,hi->h", normal, tri[good, 0])
    ok = (normal @ up) > np.cos(opts.plane_max_tilt_rad)
    if foot_height is not None:
        ok &= np.abs(offset - foot_height) < opts.plane_max_offset_m
    if not ok.any():
        return None
    normal, offset = normal[ok], offset[ok]
    counts = (np.abs(points @ normal.T - offset) < opts.plane_inlier_m).sum(0)
    best = int(np.argmax(counts))
    if counts[best] < opts.plane_min_points:
        return None
    inliers = points[np.abs(points @ normal[best] - offset[best]) < opts.plane_inlier_m]
    centroid, n, _ = fit_plane(inliers)
    n = n if n @ up > 0 else -n
    return n, float(centroid @ n)


def foot_clearance(smplx_model, betas=None):
    """Height of the lowest foot joint above the sole of the rest mesh (metres)."""
    if smplx_model is None:
        return DEFAULT_FOOT_CLEARANCE_M
    betas = np.zeros(10) if betas is None else betas
    verts = smplx_model.shaped_vertices(betas)
    joints = smplx_model.J_regressor @ verts
    return float(joints[list(FOOT_JOINTS), 1].min() - verts[:, 1].min())


def fit_floor(head, pose, rest, points=None, clearance=DEFAULT_FOOT_CLEARANCE_M, opts=None):
    """Rigid transform to the Z-up, floor-at-zero world from fused bodies and scene points.

    head (K, 3), pose (K, 55, 3, 3) with world root, rest (K, 55, 3) or (55, 3); points (N, 3).
    """
    opts = opts or FloorOptions()
    have_points = points is not None and len(points) > 0
    if len(head) == 0:
        if have_points:
            centroid, n, _ = fit_plane(np.asarray(points, dtype=np.float64))
            rot = rotation_between(n, np.array([0.0, 0.0, 1.0]))
            return FloorFit(rot, -rot @ centroid, "scene plane", "scene plane")
        return FloorFit(np.eye(3), np.zeros(3), "none", "none")
    joints = body_joints_world(head, pose, rest, [PELVIS, *FOOT_JOINTS])
    up = robust_mean_direction(head - joints[:, 0])
    up_source = "people"
    feet = joints[:, 1:]
    lowest = feet[np.arange(len(feet)), np.argmin(feet @ up, axis=1)]
    centroid, n, s = fit_plane(lowest) if len(lowest) >= 3 else (None, None, None)
    if n is not None and s[1] / np.sqrt(len(lowest)) > opts.min_foot_spread_m / 2:
        n = n if n @ up > 0 else -n
        if n @ up > np.cos(opts.plane_max_tilt_rad):
            up, up_source = n, "feet plane"
    foot_height = float(np.median(lowest @ up)) - clearance
    floor_source = "feet"
    if have_points:
        plane = ransac_floor(np.asarray(points, dtype=np.float64), up, foot_height, opts)
        if plane is not None:
            up, foot_height = plane
            up_source = floor_source = "scene plane"
    rot = rotation_between(up, np.array([0.0, 0.0, 1.0]))
    centre = (head @ rot.T).mean(0)
    translation = np.array([-centre[0], -centre[1], -foot_height])
    return FloorFit(rot, translation, up_source, floor_source)
