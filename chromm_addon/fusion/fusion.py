"""Multi-view fusion: one body per (timestep, associated cluster), no optimisation.

View-invariant parameters (shape, expression, canonical pose of body, hands and jaw) are averaged
across the cluster's views, rotations by a weighted Karcher mean on SO(3). View-dependent ones
(root rotation, head position) are first taken to the world frame with each view's camera and
combined there. Robustness to one bad view: views whose head lies farther than `head_outlier_m`
from the weighted geometric median of the cluster's heads are left out of the head; per joint,
views whose rotation lies farther than `rot_outlier_rad` from the weighted medoid of the views'
rotations (the one closest to all others) are left out of that joint's mean. Weights are the
detection scores.

Head positions: a monocular estimate knows the direction of the head (the ray through the 2D head
detection) far better than its depth along that ray. Each view's estimate is put on its ray at its
predicted depth and weighted by an information matrix that is `depth_sigma_ratio` times less
certain along the ray than across it, so views from different directions triangulate the head
(1 = plain weighted mean of the 3D estimates).

Torso tilt: the fused root orientation carries the rotation noise of every view, and a tilt of a
few degrees swings the feet by centimetres around the head anchor. The 2D pelvis detections fix
it: the fused body's pelvis is moved onto each view's pelvis ray at its depth, those points are
combined like the heads, and the root is turned (about the head) by the smallest rotation that
points the head-pelvis segment at the result (`pelvis_correction`; skipped beyond
`max_pelvis_correction_rad`, which only a bad 2D detection would ask for).
"""

import dataclasses

import numpy as np

from ..body.skeleton import HEAD, PELVIS
from ..geometry.rotations import (axis_angle_to_matrix, karcher_mean_quat, quat_multiply,
                                  quaternion_to_matrix)
from ..options import FusionOptions  # noqa: F401 (declared in the options schema)
from .body import joint_positions


@dataclasses.dataclass
class Instances:
    """Fused bodies, one per (timestep, cluster): K instances, V views.

    `pose` (K, 55, 3, 3) joint rotations with the world root orientation at joint 0.
    `members` (K, V) the detection (index into Detections) each view contributed, or -1.
    """

    time: np.ndarray
    members: np.ndarray
    head: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    expression: np.ndarray
    score: np.ndarray

    @property
    def num_views_seen(self):
        return (self.members >= 0).sum(1)


def padded_members(labels, view, num_views):
    """(K, V) detection index per cluster and view, -1 where the view did not contribute."""
    k = int(labels.max()) + 1 if len(labels) else 0
    members = np.full((k, num_views), -1, dtype=np.int64)
    members[labels, view] = np.arange(len(labels))
    return members


def geometric_median(points, weights, iters=8):
    """Weighted geometric median (Weiszfeld) of (K, V, 3) points along V; weights (K, V)."""
    wsum = np.maximum(weights.sum(1, keepdims=True), 1e-12)
    x = (weights[..., None] * points).sum(1) / wsum
    for _ in range(iters):
        dist = np.maximum(np.linalg.norm(points - x[:, None], axis=-1), 1e-4)
        w = weights / dist
        x = (w[..., None] * points).sum(1) / np.maximum(w.sum(1, keepdims=True), 1e-12)
    return x


def onto_rays(points, cam_pos, ray):
    """(K, V, 3) point estimates moved onto their views' rays (unit (K, V, 3)) at their depth."""
    depth = np.einsum("kvi,kvi->kv", points - cam_pos, ray)
    return cam_pos + depth[..., None] * ray


def combine_on_rays(points, cam_pos, ray, weights, depth_sigma_ratio):
    """Information-weighted mean of (K, V, 3) point estimates; weights (K, V), 0 = unused.

    `ray` (K, V, 3) unit directions of the 2D detections of the point; each estimate counts
    `depth_sigma_ratio` times less along its ray than across it (1: plain weighted mean).
    """
    if depth_sigma_ratio == 1.0:
        return (weights[..., None] * points).sum(1) / np.maximum(weights.sum(1), 1e-12)[:, None]
    points = onto_rays(points, cam_pos, ray)
    outer = ray[..., :, None] * ray[..., None, :]
    info = np.eye(3) - outer + outer / depth_sigma_ratio**2
    info = weights[..., None, None] * info
    lhs = info.sum(1) + 1e-12 * np.eye(3)
    rhs = np.einsum("kvij,kvj->ki", info, points)
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]


def _robust_mean_rotation(quats, weights, opts):
    """Karcher mean over axis 0 of (V, ...) quaternions after dropping the outlying views.

    Outliers are judged against the weighted medoid (the view closest, in summed geodesic
    angle, to the others), not against a mean the outliers have already pulled towards them.
    """
    used = weights > 0
    dots = np.abs(np.einsum("a...k,b...k->ab...", quats, quats))
    angles = 2 * np.arccos(np.clip(dots, 0.0, 1.0))
    spread = np.einsum("ab...,b...->a...", angles, weights)
    medoid = np.argmin(np.where(used, spread, np.inf), axis=0)
    to_medoid = np.take_along_axis(angles, medoid[None, None], axis=1)[:, 0]
    keep = used & (to_medoid < opts.rot_outlier_rad)
    return karcher_mean_quat(quats, weights * keep, iters=opts.karcher_iters)


def rotations_between(u, v):
    """(K, 3, 3) smallest rotations taking directions u to v, and their angles (K,)."""
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.cross(u, v)
    sin = np.linalg.norm(axis, axis=-1)
    angle = np.arctan2(sin, np.einsum("ki,ki->k", u, v))
    axis = axis / np.maximum(sin, 1e-12)[:, None]
    return axis_angle_to_matrix(axis * angle[:, None]), angle


def correct_tilt(head, pose, rest, cam_pos, pelvis_ray, weights, opts):
    """Turn each root about the head so the head-pelvis segment meets the 2D pelvis rays."""
    pos = joint_positions(pose, rest, [PELVIS, HEAD])
    u = pos[:, 0] - pos[:, 1]
    pelvis = np.broadcast_to((head + u)[:, None], pelvis_ray.shape)
    target = combine_on_rays(pelvis, cam_pos, pelvis_ray, weights, opts.depth_sigma_ratio)
    turn, angle = rotations_between(u, target - head)
    turn[angle > opts.max_pelvis_correction_rad] = np.eye(3)
    pose = pose.copy()
    pose[:, 0] = turn @ pose[:, 0]
    return pose


def fuse_clusters(det, labels, num_views, opts=None, skeleton=None):
    """Fuse the detections of each cluster (labels from `association.associate`).

    `skeleton` (a RestSkeleton) is needed for the tilt correction; None skips it.
    """
    opts = opts or FusionOptions()
    members = padded_members(labels, det.view, num_views)
    if len(members) == 0:
        return Instances(time=np.zeros(0, np.int64), members=members, head=np.zeros((0, 3)),
                         pose=np.zeros((0, 55, 3, 3)), betas=np.zeros((0, det.betas.shape[1])),
                         expression=np.zeros((0, det.expression.shape[1])), score=np.zeros(0))
    present = members >= 0
    idx = np.where(present, members, 0)
    w = np.where(present, det.score[idx], 0.0)
    w = np.where(present & (w <= 0), 1e-3, w)
    time = det.time[idx[np.arange(len(idx)), present.argmax(1)]]

    head_ray = det.head_ray[idx]
    heads = det.head_world[idx]
    if opts.depth_sigma_ratio != 1.0:
        heads = onto_rays(heads, det.cam_pos[idx], head_ray)
    med = geometric_median(heads, w)
    near = (np.linalg.norm(heads - med[:, None], axis=-1) < opts.head_outlier_m) & present
    w_head = np.where(near.any(1, keepdims=True), w * near, w)
    head = combine_on_rays(heads, det.cam_pos[idx], head_ray, w_head, opts.depth_sigma_ratio)

    quats = np.moveaxis(det.quat[idx], 1, 0).copy()                # (V, K, 55, 4)
    quats[:, :, 0] = quat_multiply(np.moveaxis(det.cam_quat[idx], 1, 0), quats[:, :, 0])  # root to world
    wv = np.broadcast_to(w.T[..., None], quats.shape[:3])
    pose = quaternion_to_matrix(_robust_mean_rotation(quats, wv, opts))

    wn = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
    betas = np.einsum("kv,kvb->kb", wn, det.betas[idx])
    expression = np.einsum("kv,kve->ke", wn, det.expression[idx])
    if opts.pelvis_correction and skeleton is not None:
        pose = correct_tilt(head, pose, skeleton.joints(betas, expression), det.cam_pos[idx],
                            det.pelvis_ray[idx], w, opts)
    score = np.where(present, det.score[idx], 0.0).max(1)
    return Instances(time=time, members=members, head=head, pose=pose, betas=betas,
                     expression=expression, score=score)
