"""views file -> take: the test-time modules in order.

1. first scale estimate per detection (so association thresholds are in metres),
2. cross-view association per timestep, 3. multi-view fusion per cluster,
4. scale adjustment with the fused bodies (the paper's ratio), 5. gravity and floor alignment,
6. tracking across time, 7. temporal filtering of people and cameras (on by default; static
cameras become one constant pose), 8. conversion to SMPL-X parameters, 9. foot contact and
locking (on by default, `footlock.py`).
Smoothing acts on the head-anchored trajectory and rotations before the conversion; then (with
`smooth_root`, on) the root translation so derived is filtered once more and the head follows it,
so the take's `person_head` is always the SMPL-X head joint of its parameters.
"""

import dataclasses
import json
import types

import numpy as np

from ..errors import ChrommError
from ..geometry.camera import views_seeing
from ..geometry.rotations import matrix_to_axis_angle
from ..io.take import Take, make_meta
from ..options import FuseOptions, to_dict
from .alignment import FloorFit, fit_floor, foot_clearance
from .association import associate
from .body import RestSkeleton
from .detections import gather_detections
from .footlock import lock_feet
from .fusion import fuse_clusters
from .motion_sync import sync_views
from .scale import projected_head_pelvis, robust_mean_ratio, scale_ratios
from .smoothing import FILTERS, bridge_gaps, camera_trajectories, filter_rotations, filter_values
from .smplx_params import transl_from_head
from .tracking import track

NUM_BETAS = NUM_EXPRESSION = 10


def noise_strength(head, valid, reference_m, most=2.0):
    """How much noisier than `reference_m` a head track is (1 .. `most`): its per-frame noise
    from the third differences (white noise of sigma s gives sqrt(20) s; a walk's own third
    difference is a few millimetres at 30 fps), median over the track."""
    ok = valid[3:] & valid[2:-1] & valid[1:-2] & valid[:-3]
    if ok.sum() < 10:
        return 1.0
    d3 = np.linalg.norm(np.diff(head, 3, axis=0), axis=-1)[ok]
    return float(np.clip(np.median(d3) / np.sqrt(20.0) / reference_m, 1.0, most))


def one_euro_args(opts):
    return {"min_cutoff_hz": opts.one_euro_min_cutoff_hz, "beta": opts.one_euro_beta}


def detection_scale_ratio(det, skeleton, along_prediction=True):
    """First scale estimate: the paper's ratio over single detections (before association)."""
    rest = skeleton.joints(det.betas, det.expression)
    projected = projected_head_pelvis(det.rot, rest, det.head_cam, det.cam_K)
    return robust_mean_ratio(scale_ratios(det.pelvis_2d - det.head_2d, projected, along_prediction))


def fused_scale_ratio(det, inst, skeleton, along_prediction=True):
    """The paper's ratio: mean over (frame, person) of image / projected head-pelvis length.

    Each fused body (fused shape, pose, world root and head) is taken into every camera that saw
    it and projected with that camera's intrinsics; a (frame, person) ratio is the mean over them.
    """
    k_idx, v_idx = np.nonzero(inst.members >= 0)
    if len(k_idx) == 0:
        return 1.0
    d = inst.members[k_idx, v_idx]
    cam_rot_t = np.swapaxes(det.cam_rot[d], -1, -2)
    rot = inst.pose[k_idx].copy()
    rot[:, 0] = cam_rot_t @ rot[:, 0]
    head_cam = np.einsum("dij,dj->di", cam_rot_t, inst.head[k_idx] - det.cam_pos[d])
    rest = skeleton.joints(inst.betas[k_idx], inst.expression[k_idx])
    projected = projected_head_pelvis(rot, rest, head_cam, det.cam_K[d])
    ratios = scale_ratios(det.pelvis_2d[d] - det.head_2d[d], projected, along_prediction)
    sums = np.bincount(k_idx, weights=np.nan_to_num(ratios), minlength=len(inst.time))
    counts = np.bincount(k_idx, weights=np.isfinite(ratios), minlength=len(inst.time))
    per_instance = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return robust_mean_ratio(per_instance)


def nearest_valid_index(valid):
    """(P, T) index of the valid timestep whose values fill each timestep (hold last, lead first)."""
    p, t = valid.shape
    idx = np.where(valid, np.arange(t), -1)
    fwd = np.maximum.accumulate(idx, axis=1)
    first = np.where(valid.any(1), valid.argmax(1), 0)
    return np.where(fwd >= 0, fwd, first[:, None])


def check_cameras(views, path="<views>"):
    """Reject cameras the modules cannot use: singular intrinsics, non-rigid camera rotations."""
    K = np.asarray(views.cam_K, dtype=np.float64)
    if np.any(np.abs(np.linalg.det(K)) < 1e-9):
        raise ChrommError(f"{path}: 'cam_K' holds singular intrinsics matrices")
    rot = np.asarray(views.cam_c2w, dtype=np.float64)[..., :3, :3]
    err = np.abs(np.swapaxes(rot, -1, -2) @ rot - np.eye(3)).max(initial=0.0)
    if err > 1e-3 or np.any(np.linalg.det(rot) < 0):
        raise ChrommError(f"{path}: 'cam_c2w' rotations are not rotation matrices")


def motion_offsets(views, smplx_model=None, options=None):
    """Per-view time offsets of a views file from the people's motion (no resampling):
    a `motion_sync.MotionSync`, offsets in frames of the views' rate."""
    from .motion_sync import estimate_offsets, forward_directions

    opts = options or FuseOptions()
    det = gather_detections(views, opts.min_score)
    skeleton = RestSkeleton(smplx_model)
    scale = 1.0 / detection_scale_ratio(det, skeleton, opts.scale_along_prediction) if len(det) else 1.0
    det = det.scaled(scale)
    return estimate_offsets(det.time, det.view, det.head_world, forward_directions(det.root_world),
                            views.num_views, views.num_frames, views.fps, opts.motion_sync)


# Options of the steps after tracking (filtering, foot locking): changing only these re-runs
# only those steps when `fuse_views` is given a cache (Refine).
LATE_OPTIONS = ("smooth", "smooth_filter", "smooth_window_s", "smooth_adaptive", "smooth_reference_noise_m",
                "smooth_max_gap_s", "smooth_root",
                "one_euro_min_cutoff_hz", "one_euro_beta", "smooth_cameras", "camera_window_s",
                "static_camera_m", "static_camera_deg", "foot_lock", "foot")


def fuse_views(views, smplx_model=None, options=None, path="<views>", cache=None):
    """Views (contract 3) -> Take (contract 1). `smplx_model` an SmplxModel or None.

    `path` names the views file in error messages. `cache`: a dict kept by the caller between
    calls on the same views and model (Refine); when only `LATE_OPTIONS` changed, steps 0-6 are
    taken from it instead of run again (same result, the tests check).
    """
    opts = options or FuseOptions()
    if opts.sync == "audio":
        raise ChrommError(f"{path}: audio sync needs the clips (use `sync` or `reconstruct`); a views "
                          "file can be synchronised by motion")
    if opts.smooth_filter not in FILTERS:
        raise ChrommError(f"{path}: unknown smoothing filter {opts.smooth_filter!r} (one of {', '.join(FILTERS)})")
    check_cameras(views, path)
    key = json.dumps({k: v for k, v in to_dict(opts).items() if k not in LATE_OPTIONS}, sort_keys=True)
    if cache is not None and cache.get("key") == key:
        stage = cache["stage"]
    else:
        stage = _fuse_and_track(views, smplx_model, opts)
        if cache is not None:
            cache.clear()
            cache.update(key=key, stage=stage)
    return _finish(stage.views, smplx_model, opts, stage)  # the views motion sync resampled


def _fuse_and_track(views, smplx_model, opts):
    """Steps 0-6: detections to tracked, fused bodies in the aligned world (after motion sync,
    which may hand on resampled views)."""
    skeleton = RestSkeleton(smplx_model)
    det = gather_detections(views, opts.min_score)

    known_poses = any((views.meta.get("known_cameras") or {}).get("poses") or ())
    keep_frame = opts.frame == "cameras" or (opts.frame == "auto" and known_poses)
    scale = 1.0
    if len(det) and not keep_frame:
        scale = 1.0 / detection_scale_ratio(det, skeleton, opts.scale_along_prediction)
    det = det.scaled(scale)
    sync_info = {"method": "none"}
    if opts.sync in ("auto", "motion") and views.num_views > 1:
        synced, sync_info = sync_views(views, det.head_world, det.root_world, det.time, det.view,
                                       opts.motion_sync, scale=scale)
        if synced is not views:
            views = synced
            det = gather_detections(views, opts.min_score).scaled(scale)
    num_views, fps = views.num_views, views.fps

    if len(det):
        labels = associate(det.time, det.view, det.head_world, det.root_world, det.rot[:, 1:22],
                           opts.association)
    else:
        labels = np.zeros(0, dtype=np.int64)
    inst = fuse_clusters(det, labels, num_views, opts.fusion, skeleton)

    refine = 1.0 if keep_frame else 1.0 / fused_scale_ratio(det, inst, skeleton, opts.scale_along_prediction)
    det = det.scaled(refine)
    inst.head = inst.head * refine
    scale *= refine

    points = None
    if views.points is not None and len(views.points):
        points = np.asarray(views.points, dtype=np.float64) * scale
    clearance = foot_clearance(smplx_model, inst.betas.mean(0) if len(inst.time) else None)
    if keep_frame:    # the views' (given cameras') world: origin, orientation and units as given
        floor = FloorFit(np.eye(3), np.zeros(3), "given cameras", "given cameras")
    else:
        floor = fit_floor(inst.head, inst.pose, skeleton.joints(inst.betas, inst.expression),
                          points, clearance, opts.floor)
    head = floor.apply(inst.head)
    pose = inst.pose.copy()
    pose[:, 0] = floor.rotation @ pose[:, 0]

    c2w = np.asarray(views.cam_c2w, dtype=np.float64).copy()
    c2w[..., :3, :3] = floor.rotation @ c2w[..., :3, :3]
    c2w[..., :3, 3] = floor.apply(c2w[..., :3, 3] * scale)

    def coverage(points, times):
        return views_seeing(points, times, views.cam_K, c2w, views.image_size)

    track_id = track(inst.time, head, inst.betas, fps, opts.tracking, root=pose[:, 0],
                     coverage=coverage)
    det_person = np.full(views.num_detections, -1, dtype=np.int32)
    if len(det):
        det_person[det.index] = track_id[labels]
    return types.SimpleNamespace(skeleton=skeleton, scale=scale, floor=floor, inst=inst, head=head,
                                 pose=pose, c2w=c2w, points=points, track_id=track_id,
                                 det_person=det_person, views=views, sync=sync_info)


def _finish(views, smplx_model, opts, stage):
    """Steps 7-9 and the take: filtering, SMPL-X parameters, foot locking."""
    num_views, num_frames, fps = views.num_views, views.num_frames, views.fps
    floor, scale, det_person = stage.floor, stage.scale, stage.det_person
    c2w = stage.c2w
    static = np.zeros(num_views, dtype=bool)
    if opts.smooth_cameras:
        c2w, static = camera_trajectories(c2w, fps, opts.camera_window_s, opts.static_camera_m,
                                          opts.static_camera_deg, opts.smooth_filter,
                                          **one_euro_args(opts))
    if floor.floor_source == "given cameras" and opts.foot_lock:
        # Foot locking puts soles on z = 0 with +Z up: not the floor of the given cameras' world.
        opts = dataclasses.replace(opts, foot_lock=False)
    take_arrays = _people_arrays(stage.track_id, stage.inst, stage.head, stage.pose, num_frames, fps,
                                 stage.skeleton, opts, smplx_model)
    if stage.points is None:
        points_out = np.zeros((0, 3), np.float32)
        colors = np.zeros((0, 3), np.uint8)
    else:
        points_out = floor.apply(stage.points).astype(np.float32)
        colors = np.asarray(views.colors, dtype=np.uint8)

    world_from_network = np.eye(4)
    world_from_network[:3, :3] = scale * floor.rotation
    world_from_network[:3, 3] = floor.translation
    num_people = len(take_arrays["person_ids"])
    seen_by = np.unique(np.stack([det_person, np.asarray(views.det_view)], -1)[det_person >= 0], axis=0)
    person_views = np.bincount(seen_by[:, 0], minlength=num_people).astype(np.int32)
    meta = make_meta(fps, views.meta["views"], NUM_BETAS, NUM_EXPRESSION, flat_hand_mean=True,
                     source={"kind": "fuse", "network": views.meta.get("model", "unknown"),
                             "scale": scale, "up": floor.up_source, "floor": floor.floor_source,
                             "smoothed": bool(opts.smooth), "filter": opts.smooth_filter,
                             "static_views": [bool(x) for x in static],
                             "foot_lock": bool(opts.foot_lock)},
                     options={"fuse": to_dict(opts)}, sync=stage.sync)
    return Take(meta=meta, frame_times=np.arange(num_frames, dtype=np.float64) / fps,
                image_size=np.asarray(views.image_size, dtype=np.int32),
                cam_K=np.asarray(views.cam_K, dtype=np.float32), cam_c2w=c2w.astype(np.float32),
                points=points_out, colors=colors,
                extra={"det_person": det_person.copy(), "world_from_network": world_from_network,
                       "person_head": take_arrays.pop("head").astype(np.float32),
                       "person_views": person_views},
                **take_arrays)


def _people_arrays(track_id, inst, head, pose, num_frames, fps, skeleton, opts, smplx_model=None):
    """Per-person (P, T) arrays of the take from the tracked instances."""
    num_people = int(track_id.max()) + 1 if len(track_id) and track_id.max() >= 0 else 0
    keep = track_id >= 0
    p_idx, t_idx, k_idx = track_id[keep], inst.time[keep], np.flatnonzero(keep)
    valid = np.zeros((num_people, num_frames), dtype=bool)
    valid[p_idx, t_idx] = True
    source = np.full((num_people, num_frames), -1, dtype=np.int64)
    source[p_idx, t_idx] = k_idx
    fill = nearest_valid_index(valid)
    source = np.take_along_axis(source, fill, axis=1)

    betas = np.zeros((num_people, NUM_BETAS))
    if num_people:
        w = inst.num_views_seen[k_idx].astype(np.float64)
        np.add.at(betas, p_idx, inst.betas[k_idx] * w[:, None])
        betas /= np.maximum(np.bincount(p_idx, weights=w, minlength=num_people), 1e-12)[:, None]
    p_head = head[source] if num_people else np.zeros((0, num_frames, 3))
    p_pose = pose[source] if num_people else np.zeros((0, num_frames, 55, 3, 3))
    p_expr = inst.expression[source] if num_people else np.zeros((0, num_frames, NUM_EXPRESSION))
    strength = np.ones(num_people)
    kw = one_euro_args(opts)
    person_args = [(fps, opts.smooth_filter, opts.smooth_window_s, opts.smooth_max_gap_s)] * num_people
    if opts.smooth and num_people:
        if opts.smooth_adaptive:
            strength = np.array([noise_strength(p_head[p], valid[p], opts.smooth_reference_noise_m)
                                 for p in range(num_people)])
        person_args = [(fps, opts.smooth_filter, opts.smooth_window_s * strength[p] ** 0.8, opts.smooth_max_gap_s)
                       for p in range(num_people)]
        for p in range(num_people):
            p_head[p] = filter_values(p_head[p], valid[p], *person_args[p], **kw)
            p_pose[p] = filter_rotations(p_pose[p], valid[p], *person_args[p], **kw)
            p_expr[p] = filter_values(p_expr[p], valid[p], *person_args[p], **kw)
    rest = skeleton.joints(betas[:, None], p_expr)
    transl = transl_from_head(p_head, p_pose, rest)
    if opts.smooth and opts.smooth_root:
        # The root is the filtered head less the head's offset through the filtered spine and
        # neck: their leftover rotation noise, times that 0.5 m lever, lands on the pelvis (with
        # 2 views its jitter was about 10x a walk's own). Filtered once more; the head follows.
        for p in range(num_people):
            smoothed = filter_values(transl[p], valid[p], *person_args[p], **kw)
            p_head[p] += smoothed - transl[p]
            transl[p] = smoothed
    contact = np.zeros((num_people, num_frames, 2), dtype=bool)
    if opts.foot_lock and num_people:
        clearance = np.array([foot_clearance(smplx_model, b) for b in betas])
        span = np.stack([bridge_gaps(v, int(round(opts.smooth_max_gap_s * fps))) for v in valid])
        p_pose, locked, contact = lock_feet(p_pose, rest, transl, span, clearance, fps, opts.foot,
                                            speed_scale=np.sqrt(strength))
        contact &= valid[..., None]
        p_head = p_head + (locked - transl)  # the root may come down; the head with it
        transl = locked
    aa = matrix_to_axis_angle(p_pose)
    f32 = np.float32
    return dict(person_ids=np.arange(num_people, dtype=np.int32), betas=betas.astype(f32),
                expression=p_expr.astype(f32), global_orient=aa[:, :, 0].astype(f32),
                body_pose=aa[:, :, 1:22].astype(f32), jaw_pose=aa[:, :, 22].astype(f32),
                left_hand_pose=aa[:, :, 25:40].astype(f32),
                right_hand_pose=aa[:, :, 40:55].astype(f32), transl=transl.astype(f32),
                valid=valid, head=p_head, foot_contact=contact)
