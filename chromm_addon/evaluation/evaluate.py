"""A predicted take (or one view's raw estimates) against a synthetic scene's ground truth.

The predicted world is related to the true one by an unknown rigid motion (the fused world is
only fixed up to a turn about Z and a shift on the floor), so it is first brought onto the true
world through the cameras, which both share (`metrics.align_cameras`). Predicted people are then
matched to true people per timestep (Hungarian on mean body-joint distance, gate 0.5 m) for the
identity metrics, and each true person gets the predicted track it was matched to most often for
the body metrics.
"""

import numpy as np

from ..body.lbs import full_pose_matrices, posed_joints
from ..body.skeleton import HEAD, approximate_rest_joints
from . import metrics as M
from .synthetic import model_rest_joints

MATCH_GATE_M = 0.5


def take_joints(take, model=None):
    """(P, T, 55, 3) world joints of a take's people (smplx semantics of contract 1)."""
    hands_mean = None
    if model is not None and not take.flat_hand_mean:
        hands_mean = (model.hands_mean_left, model.hands_mean_right)
    rot = full_pose_matrices(take.global_orient, take.body_pose, take.jaw_pose,
                             take.left_hand_pose, take.right_hand_pose, hands_mean=hands_mean)
    out = np.empty(rot.shape[:3] + (3,))
    for p in range(take.num_people):
        rest = (model_rest_joints(model, take.betas[p], take.expression[p]) if model is not None
                else approximate_rest_joints())
        out[p] = posed_joints(rest, take.betas[p], rot[p], take.transl[p])
    return out


def _body(joints):
    return joints[..., M.BODY_JOINTS, :]


def _person_metrics(pred, gt, frames, fps, segment, contact=None, pred_own=None):
    """Body metrics of one person's (T, 55, 3) predicted (true-world aligned) and true joints.

    `contact` (T, 2) ground-truth foot contact (left, right) or None: foot sliding then counts
    the labelled frames (else those where the true foot moves < 1 cm), and `foot_height` is the
    mean |predicted - true height above the floor| of the planted foot joints (floor penetration
    or float), heights taken in each one's own world (`pred_own`: the prediction before the
    alignment onto the true world, whose floor is z = 0 like the truth's), so that the error of
    the camera-based alignment does not count."""
    p, g = _body(pred[frames]), _body(gt[frames])
    feet = list(M.FOOT_JOINTS)
    point_contact = None if contact is None else np.asarray(contact, bool)[:, [0, 1, 0, 1]]
    out = {"mpjpe": M.mpjpe(p, g), "pa_mpjpe": M.pa_mpjpe(p, g),
           "w_mpjpe": M.w_mpjpe(p, g, segment), "wa_mpjpe": M.wa_mpjpe(p, g, segment),
           "world_mpjpe": M.world_mpjpe(p, g), "rte": M.rte(p[:, 0], g[:, 0]),
           "jitter": M.jitter(_body(pred), fps, frames), "gt_jitter": M.jitter(_body(gt), fps, frames),
           "foot_sliding": M.foot_sliding(pred[:, feet], gt[:, feet], valid=frames,
                                          contact=point_contact)}
    if point_contact is not None:
        planted = point_contact & frames[:, None]
        own = pred if pred_own is None else pred_own
        dz = np.abs(own[:, feet, 2] - gt[:, feet, 2])[planted]
        out["foot_height"] = float(dz.mean()) if dz.size else float("nan")
    return out


def _weighted_mean(rows, weights):
    keys = rows[0].keys() if rows else []
    out = {}
    for k in keys:
        vals = np.array([r[k] for r in rows], dtype=np.float64)
        w = np.asarray(weights, np.float64) * np.isfinite(vals)
        out[k] = float(np.sum(np.nan_to_num(vals) * w) / w.sum()) if w.sum() > 0 else float("nan")
    return out


def evaluate_take(pred_take, scene, model=None, views=None, segment=M.SEGMENT,
                  gate_m=MATCH_GATE_M):
    """All metrics of a predicted take against `scene` (a SyntheticScene); a flat dict.

    Body metrics are in metres (frame-weighted over true people), camera rotation in degrees.
    With `views` (the simulated views file the take was made from, holding `gt_det_person`) and a
    take holding `det_person` in `extra`, association metrics are added.
    """
    gt = scene.joints(model)
    pred_raw = take_joints(pred_take, model)
    # For matching, a similarity (robust to scale error); for the metric world, a rigid fit, so
    # scale errors count.
    pred_sim = M.align_cameras(pred_take.cam_c2w, scene.cam_c2w, with_scale=True).apply(pred_raw)
    pred_rigid = M.align_cameras(pred_take.cam_c2w, scene.cam_c2w, with_scale=False).apply(pred_raw)
    gt_valid, pred_valid = scene.valid, pred_take.valid
    P, Q, T = gt.shape[0], pred_raw.shape[0], gt.shape[1]

    assigned = np.full((T, P), -1, np.int64)
    pair_frames = np.zeros((Q, P))
    for f in range(T):
        q_idx, g_idx = np.flatnonzero(pred_valid[:, f]), np.flatnonzero(gt_valid[:, f])
        if not len(q_idx) or not len(g_idx):
            continue
        cost = np.linalg.norm(_body(pred_sim[q_idx, f])[:, None] - _body(gt[g_idx, f])[None],
                              axis=-1).mean(-1)
        for a, b in M.match_by_cost(cost, gate_m):
            assigned[f, g_idx[b]] = pred_take.person_ids[q_idx[a]]
            pair_frames[q_idx[a], g_idx[b]] += 1
    result = M.clear_mot(assigned, gt_valid.T, pred_valid.T)
    result["num_tracks"], result["num_people"] = int(Q), int(P)

    rows, weights, covered = [], [], 0
    for q, g in M.match_by_cost(-pair_frames, max_cost=-1):
        frames = gt_valid[g] & pred_valid[q]
        covered += int(frames.sum())
        contact = None if scene.foot_contact is None else scene.foot_contact[g]
        rows.append(_person_metrics(pred_rigid[q], gt[g], frames, scene.fps, segment, contact,
                                    pred_own=pred_raw[q]))
        weights.append(frames.sum())
    result.update(_weighted_mean(rows, weights) if rows else {})
    result["coverage"] = covered / max(int(gt_valid.sum()), 1)
    result.update(M.camera_errors(pred_take.cam_c2w, scene.cam_c2w))

    det_person = pred_take.extra.get("det_person") if pred_take.extra else None
    if views is not None and det_person is not None and "gt_det_person" in views.extra:
        assoc = M.association_accuracy(det_person, views.extra["gt_det_person"], views.det_time)
        result.update({f"assoc_{k}": v for k, v in assoc.items()})
    return result


# --- single-view baselines ---------------------------------------------------------------------

def single_view_joints(views, view, num_people, model=None):
    """One view's own estimates taken to the true world: (P, T, 55, 3) joints and (P, T) valid.

    An oracle baseline: detections are attributed to their true person (`gt_det_person`) and
    the network frame goes to the world by the true similarity (`gt_world_from_net`), so the
    baseline has the true association and scale, and only its own noise and missed frames.
    """
    world_from_net = np.asarray(views.extra["gt_world_from_net"], np.float64)
    scale = np.cbrt(np.linalg.det(world_from_net[:3, :3]))
    rot_world = world_from_net[:3, :3] / scale
    person = np.asarray(views.extra["gt_det_person"])
    sel = np.flatnonzero((views.det_view == view) & (person >= 0))
    T = views.num_frames
    joints = np.zeros((num_people, T, 55, 3))
    valid = np.zeros((num_people, T), bool)
    if not len(sel):
        return joints, valid
    d_t, d_p = views.det_time[sel], person[sel]
    c2w = np.asarray(views.cam_c2w[view, d_t], np.float64)
    rv = np.asarray(views.det_rotvec[sel], np.float64)
    rot = full_pose_matrices(rv[:, 0], rv[:, 1:22], rv[:, 52], rv[:, 22:37], rv[:, 37:52])
    rot[:, 0] = rot_world @ c2w[:, :3, :3] @ rot[:, 0]
    if model is not None:
        rest = np.stack([model_rest_joints(model, b, e[None])[0]
                         for b, e in zip(views.det_betas[sel], views.det_expression[sel])])
    else:
        rest = approximate_rest_joints()
    rel = posed_joints(rest, None, rot, np.zeros((len(sel), 3)))
    head_net = np.einsum("dij,dj->di", c2w[:, :3, :3], views.det_head_cam[sel]) + c2w[:, :3, 3]
    head_world = head_net @ world_from_net[:3, :3].T + world_from_net[:3, 3]
    joints[d_p, d_t] = rel - rel[:, HEAD:HEAD + 1] + head_world[:, None]
    valid[d_p, d_t] = True
    return joints, valid


def evaluate_single_views(views, scene, model=None, segment=M.SEGMENT, min_coverage=0.5):
    """W-MPJPE (and WA-, world) of every view alone, and the best single view per person.

    Returns {"per_view": {(view, person): metrics}, "best": frame-weighted means over people of
    the metrics of each person's best view (lowest W-MPJPE among views that see the person in at
    least `min_coverage` of its frames, else the view that sees it most)}.
    """
    gt = scene.joints(model)
    P = scene.num_people
    per_view, best_rows, weights = {}, [], []
    cover = np.zeros((views.num_views, P))
    for v in range(views.num_views):
        joints, valid = single_view_joints(views, v, P, model)
        valid &= scene.valid
        for p in range(P):
            cover[v, p] = valid[p].sum() / max(scene.valid[p].sum(), 1)
            if valid[p].sum() >= 2:
                per_view[(v, p)] = _person_metrics(joints[p], gt[p], valid[p], scene.fps, segment)
                per_view[(v, p)]["frames"] = int(valid[p].sum())
    for p in range(P):
        cands = [v for v in range(views.num_views) if (v, p) in per_view and cover[v, p] >= min_coverage]
        if not cands:
            cands = [int(np.argmax(cover[:, p]))] if (int(np.argmax(cover[:, p])), p) in per_view else []
        if not cands:
            continue
        v = min(cands, key=lambda v: per_view[(v, p)]["w_mpjpe"])
        best_rows.append({k: x for k, x in per_view[(v, p)].items() if k != "frames"})
        weights.append(per_view[(v, p)]["frames"])
    return {"per_view": per_view, "best": _weighted_mean(best_rows, weights) if best_rows else {}}
