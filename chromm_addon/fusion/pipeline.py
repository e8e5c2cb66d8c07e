"""views file -> take: the test-time modules in order.

1. first scale estimate per detection (so association thresholds are in metres),
2. cross-view association per timestep, 3. multi-view fusion per cluster,
4. scale adjustment with the fused bodies (the paper's ratio), 5. gravity and floor alignment,
6. tracking across time, 7. optional smoothing, 8. conversion to SMPL-X parameters.
Smoothing acts on the head-anchored trajectory and rotations before the conversion, so the
exactness of `transl` (head joint at the fused head) holds for the smoothed take too.
"""

import numpy as np

from ..errors import ChrommError
from ..geometry.rotations import matrix_to_axis_angle
from ..io.take import Take, make_meta
from ..options import FuseOptions, to_dict
from .alignment import fit_floor, foot_clearance
from .association import associate
from .body import RestSkeleton
from .detections import gather_detections
from .fusion import fuse_clusters
from .scale import projected_head_pelvis, robust_mean_ratio, scale_ratios
from .smoothing import smooth_rotations, smooth_values
from .smplx_params import transl_from_head
from .tracking import track

NUM_BETAS = NUM_EXPRESSION = 10


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


def fuse_views(views, smplx_model=None, options=None, path="<views>"):
    """Views (contract 3) -> Take (contract 1). `smplx_model` an SmplxModel or None.

    `path` names the views file in error messages.
    """
    opts = options or FuseOptions()
    check_cameras(views, path)
    skeleton = RestSkeleton(smplx_model)
    num_views, num_frames, fps = views.num_views, views.num_frames, views.fps
    det = gather_detections(views, opts.min_score)

    scale = 1.0 / detection_scale_ratio(det, skeleton, opts.scale_along_prediction) if len(det) else 1.0
    det = det.scaled(scale)

    if len(det):
        labels = associate(det.time, det.view, det.head_world, det.root_world, det.rot[:, 1:22],
                           opts.association)
    else:
        labels = np.zeros(0, dtype=np.int64)
    inst = fuse_clusters(det, labels, num_views, opts.fusion, skeleton)

    refine = 1.0 / fused_scale_ratio(det, inst, skeleton, opts.scale_along_prediction)
    det = det.scaled(refine)
    inst.head = inst.head * refine
    scale *= refine

    points = None
    if views.points is not None and len(views.points):
        points = np.asarray(views.points, dtype=np.float64) * scale
    clearance = foot_clearance(smplx_model, inst.betas.mean(0) if len(inst.time) else None)
    floor = fit_floor(inst.head, inst.pose, skeleton.joints(inst.betas, inst.expression),
                      points, clearance, opts.floor)
    head = floor.apply(inst.head)
    pose = inst.pose.copy()
    pose[:, 0] = floor.rotation @ pose[:, 0]

    track_id = track(inst.time, head, inst.betas, fps, opts.tracking, root=pose[:, 0])
    take_arrays = _people_arrays(track_id, inst, head, pose, num_frames, fps, skeleton, opts)

    c2w = np.asarray(views.cam_c2w, dtype=np.float64).copy()
    c2w[..., :3, :3] = floor.rotation @ c2w[..., :3, :3]
    c2w[..., :3, 3] = floor.apply(c2w[..., :3, 3] * scale)
    if points is None:
        points_out = np.zeros((0, 3), np.float32)
        colors = np.zeros((0, 3), np.uint8)
    else:
        points_out = floor.apply(points).astype(np.float32)
        colors = np.asarray(views.colors, dtype=np.uint8)

    world_from_network = np.eye(4)
    world_from_network[:3, :3] = scale * floor.rotation
    world_from_network[:3, 3] = floor.translation
    det_person = np.full(views.num_detections, -1, dtype=np.int32)
    if len(det):
        det_person[det.index] = track_id[labels]
    meta = make_meta(fps, views.meta["views"], NUM_BETAS, NUM_EXPRESSION, flat_hand_mean=True,
                     source={"kind": "fuse", "network": views.meta.get("model", "unknown"),
                             "scale": scale, "up": floor.up_source, "floor": floor.floor_source,
                             "smoothed": bool(opts.smooth)},
                     options={"fuse": to_dict(opts)})
    return Take(meta=meta, frame_times=np.arange(num_frames, dtype=np.float64) / fps,
                image_size=np.asarray(views.image_size, dtype=np.int32),
                cam_K=np.asarray(views.cam_K, dtype=np.float32), cam_c2w=c2w.astype(np.float32),
                points=points_out, colors=colors,
                extra={"det_person": det_person, "world_from_network": world_from_network,
                       "person_head": take_arrays.pop("head").astype(np.float32)},
                **take_arrays)


def _people_arrays(track_id, inst, head, pose, num_frames, fps, skeleton, opts):
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
    if opts.smooth and num_people:
        half = max(1, int(round(opts.smooth_window_s * fps)))
        for p in range(num_people):
            p_head[p] = smooth_values(p_head[p], valid[p], half)
            p_pose[p] = smooth_rotations(p_pose[p], valid[p], half)
            p_expr[p] = smooth_values(p_expr[p], valid[p], half)
    rest = skeleton.joints(betas[:, None], p_expr)
    transl = transl_from_head(p_head, p_pose, rest)
    aa = matrix_to_axis_angle(p_pose)
    f32 = np.float32
    return dict(person_ids=np.arange(num_people, dtype=np.int32), betas=betas.astype(f32),
                expression=p_expr.astype(f32), global_orient=aa[:, :, 0].astype(f32),
                body_pose=aa[:, :, 1:22].astype(f32), jaw_pose=aa[:, :, 22].astype(f32),
                left_hand_pose=aa[:, :, 25:40].astype(f32),
                right_hand_pose=aa[:, :, 40:55].astype(f32), transl=transl.astype(f32),
                valid=valid, head=p_head)
