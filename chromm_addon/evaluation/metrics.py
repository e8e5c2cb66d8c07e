"""Standard human-motion and camera metrics in numpy; all lengths in metres, angles in degrees.

Definitions follow the WHAM / GVHMR / SLAHMR evaluation code (see docs/evaluation.md):
- MPJPE: mean joint distance after subtracting the root (pelvis) joint, per frame.
- PA-MPJPE: mean joint distance after a per-frame similarity (Procrustes with scale) alignment.
- W-MPJPE: sequences cut into segments of 100 frames; each segment aligned by one similarity
  fitted on its first two frames only; then mean joint distance.
- WA-MPJPE: same segments, each aligned by one similarity fitted on all its frames.
- RTE: root trajectory error after one rigid (no scale) alignment of the whole root
  trajectory, divided by the ground-truth path length, in percent.
- Jitter: mean norm of the third finite difference of predicted joints times fps^3 (m/s^3).
- Foot sliding: mean predicted displacement of foot points on frames where the ground truth
  foot moves less than 1 cm.
Callers pass only frames where both prediction and ground truth are valid (as WHAM does).
"""

import numpy as np

from ..geometry.rotations import matrix_to_axis_angle, mean_rotation, project_to_rotation
from ..geometry.similarity import Sim3, umeyama

BODY_JOINTS = np.arange(22)  # SMPL-X body joints (pelvis .. wrists): the joint set of the metrics
FOOT_JOINTS = (7, 8, 10, 11)
SEGMENT = 100


# --- alignment ----------------------------------------------------------------------------------

def _batched_procrustes(pred, gt):
    """Per-frame similarity alignment of (F, J, 3) pred onto gt; returns aligned pred."""
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    xp, xg = pred - mu_p, gt - mu_g
    cov = np.einsum("fji,fjk->fik", xg, xp)
    u, d, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt))
    e = np.ones_like(d)
    e[:, 2] = sign
    R = u @ (e[:, :, None] * vt)
    var = np.sum(xp**2, axis=(1, 2))
    s = np.sum(d * e, axis=1) / np.maximum(var, 1e-18)
    return s[:, None, None] * np.einsum("fik,fjk->fji", R, xp) + mu_g


# --- per-frame body metrics ---------------------------------------------------------------------

def _per_joint(pred, gt):
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


def mpjpe(pred, gt, root=0):
    """Root-relative MPJPE of (F, J, 3) joints (`root` a joint index into J, or None: no centring)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if root is not None:
        pred = pred - pred[:, root:root + 1]
        gt = gt - gt[:, root:root + 1]
    return float(_per_joint(pred, gt).mean()) if pred.size else float("nan")


def pa_mpjpe(pred, gt):
    """MPJPE after a per-frame Procrustes alignment with scale."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if not pred.size:
        return float("nan")
    return float(_per_joint(_batched_procrustes(pred, gt), gt).mean())


def _segments(num_frames, segment):
    starts = range(0, num_frames, segment)
    return [(a, min(a + segment, num_frames)) for a in starts if min(a + segment, num_frames) - a >= 2]


def w_mpjpe(pred, gt, segment=SEGMENT):
    """W-MPJPE: per segment, a similarity fitted on the first two frames, then the mean error."""
    return _segment_aligned_error(pred, gt, segment, first_two=True)


def wa_mpjpe(pred, gt, segment=SEGMENT):
    """WA-MPJPE: per segment, one similarity fitted on all its frames, then the mean error."""
    return _segment_aligned_error(pred, gt, segment, first_two=False)


def _segment_aligned_error(pred, gt, segment, first_two):
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    errors = []
    for a, b in _segments(len(pred), segment):
        fit = slice(a, a + 2) if first_two else slice(a, b)
        sim = umeyama(pred[fit], gt[fit])
        errors.append(_per_joint(sim.apply(pred[a:b]), gt[a:b]).mean(axis=1))
    return float(np.concatenate(errors).mean()) if errors else float("nan")


def world_mpjpe(pred, gt):
    """Mean joint distance in the world frame with no alignment (metric, as HSfM's W-MPJPE)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    return float(_per_joint(pred, gt).mean()) if pred.size else float("nan")


def rte(pred_root, gt_root):
    """Root translation error in % of the ground-truth path length, after a rigid alignment."""
    pred_root, gt_root = np.asarray(pred_root, np.float64), np.asarray(gt_root, np.float64)
    length = np.sum(np.linalg.norm(np.diff(gt_root, axis=0), axis=1))
    if len(pred_root) < 2 or length <= 0:
        return float("nan")
    sim = umeyama(pred_root, gt_root, with_scale=False)
    err = np.linalg.norm(sim.apply(pred_root) - gt_root, axis=1)
    return float(100.0 * err.mean() / length)


def jitter(joints, fps, valid=None):
    """Mean ||x[t+3] - 3x[t+2] + 3x[t+1] - x[t]|| * fps^3 over time and joints, in m/s^3.

    joints (T, J, 3); `valid` (T,) bool keeps only differences whose four frames are valid."""
    x = np.asarray(joints, np.float64)
    if len(x) < 4:
        return float("nan")
    d3 = np.linalg.norm(x[3:] - 3 * x[2:-1] + 3 * x[1:-2] - x[:-3], axis=-1)
    if valid is not None:
        v = np.asarray(valid, bool)
        d3 = d3[v[3:] & v[2:-1] & v[1:-2] & v[:-3]]
    return float(d3.mean() * fps**3) if d3.size else float("nan")


def foot_sliding(pred_feet, gt_feet, threshold=0.01, valid=None, contact=None):
    """Mean predicted per-frame displacement of (T, K, 3) foot points where the ground truth
    moves less than `threshold` metres per frame (contact); `valid` (T,) as in `jitter`.

    `contact` (T, K) bool, ground-truth contact labels per point, replaces the threshold: a step
    t -> t+1 counts when the point is in contact at both."""
    pd = np.linalg.norm(np.diff(np.asarray(pred_feet, np.float64), axis=0), axis=-1)
    if contact is not None:
        c = np.asarray(contact, bool)
        contact = c[1:] & c[:-1]
    else:
        gd = np.linalg.norm(np.diff(np.asarray(gt_feet, np.float64), axis=0), axis=-1)
        contact = gd < threshold
    if valid is not None:
        v = np.asarray(valid, bool)
        contact &= (v[1:] & v[:-1])[:, None]
    return float(pd[contact].mean()) if contact.any() else float("nan")


# --- cameras ------------------------------------------------------------------------------------

def align_cameras(pred_c2w, gt_c2w, with_scale=True):
    """(s, R, t) taking the predicted world to the ground-truth world from cameras.

    R is the rotation mean of gt_R pred_R^T over all (view, time); s and t are then the least-
    squares fit of the camera centres (well defined even for two static cameras).
    """
    p = np.asarray(pred_c2w, np.float64).reshape(-1, 4, 4)
    g = np.asarray(gt_c2w, np.float64).reshape(-1, 4, 4)
    R = mean_rotation(g[:, :3, :3] @ np.swapaxes(p[:, :3, :3], -1, -2))
    pc = p[:, :3, 3] @ R.T
    gc = g[:, :3, 3]
    xp, xg = pc - pc.mean(0), gc - gc.mean(0)
    var = np.sum(xp**2)
    s = float(np.sum(xp * xg) / var) if with_scale and var > 1e-12 else 1.0
    t = gc.mean(0) - s * pc.mean(0)
    return Sim3(s, R, t)


def camera_errors(pred_c2w, gt_c2w, with_scale=True):
    """Rotation error (deg) and centre error (m) per camera after `align_cameras`; means."""
    sim = align_cameras(pred_c2w, gt_c2w, with_scale)
    p = np.asarray(pred_c2w, np.float64).reshape(-1, 4, 4)
    g = np.asarray(gt_c2w, np.float64).reshape(-1, 4, 4)
    # angle via the quaternion: accurate near zero, where arccos of the trace is not
    rel = np.swapaxes(g[:, :3, :3], -1, -2) @ sim.rotation @ p[:, :3, :3]
    rot_err = np.rad2deg(np.linalg.norm(matrix_to_axis_angle(project_to_rotation(rel)), axis=-1))
    trans_err = np.linalg.norm(sim.apply(p[:, :3, 3]) - g[:, :3, 3], axis=1)
    return {"cam_rot_deg": float(rot_err.mean()), "cam_trans_m": float(trans_err.mean()),
            "cam_scale": sim.scale}


# --- identities ---------------------------------------------------------------------------------

def identity_switches(assigned):
    """CLEAR-MOT identity switches of (T, G) predicted ids matched to each ground-truth person
    per timestep (-1: unmatched): a switch is a match whose id differs from the person's last one."""
    assigned = np.asarray(assigned)
    switches = 0
    for g in range(assigned.shape[1]):
        ids = assigned[:, g]
        ids = ids[ids >= 0]
        switches += int(np.count_nonzero(ids[1:] != ids[:-1]))
    return switches


def clear_mot(assigned, gt_valid, pred_valid):
    """MOTA = 1 - (misses + false positives + id switches) / ground-truth instances.

    assigned (T, G) matched predicted id per gt person or -1; gt_valid (T, G); pred_valid (T, P)
    whether each predicted person exists at t (its unmatched instances are false positives)."""
    assigned = np.asarray(assigned)
    gt_valid = np.asarray(gt_valid, bool)
    matched = assigned >= 0
    misses = int(np.count_nonzero(gt_valid & ~matched))
    false_pos = int(np.count_nonzero(pred_valid)) - int(np.count_nonzero(matched))
    switches = identity_switches(assigned)
    total = max(int(np.count_nonzero(gt_valid)), 1)
    return {"mota": 1.0 - (misses + false_pos + switches) / total, "misses": misses,
            "false_positives": false_pos, "id_switches": switches}


def association_accuracy(pred_label, gt_label, group=None):
    """How well detections were grouped into people.

    pred_label (D,) predicted person per detection (-1: rejected); gt_label (D,) true person
    (-1: false positive). `accuracy`: fraction of detections whose predicted person is the one
    mapped (one-to-one, maximum agreement) to their true person, false positives counting as
    right when rejected. `pair_precision` / `pair_recall`: over pairs of true detections within
    the same `group` (e.g. timestep), how many predicted same-person pairs are truly the same,
    and how many true same-person pairs were predicted together.
    """
    pred = np.asarray(pred_label, np.int64)
    gt = np.asarray(gt_label, np.int64)
    mapping = _label_mapping(pred, gt)
    mapped = np.array([mapping.get(int(p), -2) for p in pred]) if len(pred) else np.zeros(0, int)
    right = np.where(gt >= 0, mapped == gt, pred < 0)
    out = {"accuracy": float(right.mean()) if len(right) else float("nan")}
    group = np.zeros(len(pred), np.int64) if group is None else np.asarray(group, np.int64)
    tp = fp = fn = 0
    for g in np.unique(group):
        idx = np.flatnonzero((group == g) & (gt >= 0))
        if len(idx) < 2:
            continue
        same_pred = (pred[idx, None] == pred[None, idx]) & (pred[idx, None] >= 0)
        same_gt = gt[idx, None] == gt[None, idx]
        upper = np.triu(np.ones((len(idx), len(idx)), bool), 1)
        tp += int(np.count_nonzero(same_pred & same_gt & upper))
        fp += int(np.count_nonzero(same_pred & ~same_gt & upper))
        fn += int(np.count_nonzero(~same_pred & same_gt & upper))
    out["pair_precision"] = tp / (tp + fp) if tp + fp else 1.0
    out["pair_recall"] = tp / (tp + fn) if tp + fn else 1.0
    return out


def _label_mapping(pred, gt):
    """One-to-one map predicted label -> true label maximising the number of agreeing detections."""
    from scipy.optimize import linear_sum_assignment

    keep = (pred >= 0) & (gt >= 0)
    if not keep.any():
        return {}
    p_ids, p_inv = np.unique(pred[keep], return_inverse=True)
    g_ids, g_inv = np.unique(gt[keep], return_inverse=True)
    counts = np.zeros((len(p_ids), len(g_ids)))
    np.add.at(counts, (p_inv, g_inv), 1)
    rows, cols = linear_sum_assignment(-counts)
    return {int(p_ids[r]): int(g_ids[c]) for r, c in zip(rows, cols) if counts[r, c] > 0}


def match_by_cost(cost, max_cost=np.inf):
    """Hungarian assignment on a (A, B) cost matrix (inf: forbidden); pairs under `max_cost`."""
    from scipy.optimize import linear_sum_assignment

    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    finite = np.isfinite(cost)
    big = (np.nanmax(cost[finite]) + 1.0) * 1e3 if finite.any() else 1.0
    rows, cols = linear_sum_assignment(np.where(finite, cost, big))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if finite[r, c] and cost[r, c] <= max_cost]

