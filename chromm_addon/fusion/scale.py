"""Scale adjustment (CHROMM): bring the scene to the metric scale of the SMPL-X bodies.

The network's scene (cameras, points, head depths) is near-metric with some scale error s. A
metric body placed at a head position that is s times too far projects s times too small, so
ratio = image head-pelvis length / projected SMPL-X head-pelvis length estimates s, and the
scene is divided by it. The per-(frame, person) ratios are averaged after rejecting outliers.
"""

import numpy as np

from ..body.skeleton import HEAD, PELVIS
from .body import joint_positions

MIN_LENGTH_PX = 8.0  # shorter head-pelvis segments (seen end-on) carry no usable ratio


def projected_head_pelvis(rot_cam, rest, head_cam, cam_K):
    """(D, 2) pixel vector head -> pelvis of bodies anchored at `head_cam`; zero when behind.

    rot_cam (D, J, 3, 3) with the root rotation in the camera frame, rest (D, 55, 3),
    head_cam (D, 3) camera-frame head positions, cam_K (D, 3, 3).
    """
    pos = joint_positions(rot_cam, rest, [PELVIS, HEAD])
    pelvis_cam = head_cam + pos[:, 0] - pos[:, 1]
    pts = np.stack([head_cam, pelvis_cam], axis=1)
    z = np.maximum(pts[..., 2:], 1e-6)
    uv = np.einsum("dij,dkj->dki", cam_K, pts / z)[..., :2]
    vec = uv[:, 1] - uv[:, 0]
    return np.where((pts[..., 2] > 1e-3).all(axis=1)[:, None], vec, 0.0)


def scale_ratios(image_vec, projected_vec, along_prediction=True):
    """Per-sample ratios image / projected, NaN where a segment is too short to measure.

    image_vec, projected_vec (D, 2) head -> pelvis pixel vectors. With `along_prediction` the
    image segment is measured along the predicted one (its component on that direction) instead
    of by its length: rotation noise that tilts the body out of the image plane shortens the
    projected length (ratio biased up, about 4 % at 10 degrees per joint), while a tilt within
    the image plane shortens the component the same way, so the two cancel to second order.
    The plain length ratio is the paper's definition.
    """
    image_len = np.linalg.norm(image_vec, axis=-1)
    proj_len = np.linalg.norm(projected_vec, axis=-1)
    ok = (image_len >= MIN_LENGTH_PX) & (proj_len >= MIN_LENGTH_PX)
    safe = np.where(ok, proj_len, 1.0)
    if along_prediction:
        ratio = np.einsum("di,di->d", image_vec, projected_vec) / safe**2
    else:
        ratio = image_len / safe
    return np.where(ok & (ratio > 0), ratio, np.nan)


def robust_mean_ratio(ratios, weights=None):
    """Mean of the finite ratios within 3 scaled MADs (in log space) of their median; 1 if none."""
    ratios = np.asarray(ratios, dtype=np.float64)
    w = np.ones_like(ratios) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(ratios) & (ratios > 0) & (w > 0)
    if not ok.any():
        return 1.0
    log_r = np.log(ratios[ok])
    med = np.median(log_r)
    mad = 1.4826 * np.median(np.abs(log_r - med))
    inlier = np.abs(log_r - med) <= max(3.0 * mad, 0.02)
    return float(np.average(ratios[ok][inlier], weights=w[ok][inlier]))
