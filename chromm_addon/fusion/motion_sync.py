"""Motion synchronisation: per-view time offsets from the people themselves (no audio, no clap).

Pi3X puts every view's cameras and detections in one world frame whatever the clips' timing, so
in sync the views' 3D head tracks and body orientations agree; out of sync a moving person is
seen at different places. For every view this module finds the time offset (in frames, sub-frame)
that makes its detections agree best with a reference view's, then resamples each view's
detections and cameras at the common timesteps so association and fusion work on one timeline.

1. Per view, detections are linked frame to frame into tracklets (nearest head in the world
   within `link_gate_m` per frame, one-to-one, bridging up to `MAX_GAP` missed frames), so a view
   can be evaluated between its frames: a tracklet's head and forward direction are interpolated
   linearly at fractional times and across its gaps. (Without bridging, misses make fractional
   offsets look worse than whole ones: fewer tracklets span both neighbouring frames.)
2. Cost of an offset d for view v against the reference r: over every reference detection at
   frame t, the distance to the nearest tracklet of v at time t + d, in metres squared plus the
   forward directions' squared chord times `orientation_m`^2, less the two views' constant
   disagreement (the mean difference of the matched pairs: camera pose errors move all of a
   view's people alike, which walking people would otherwise turn into a time offset), truncated
   at `truncate_m`^2
   (ghosts, misses and people only one view sees cost the same at every offset, so they do not
   pull). Times at which v has no tracklet are skipped.
3. Search: every whole frame in +-`max_offset_s` (on every third reference frame, for speed),
   then a 0.1-frame grid over +-1 frame around the best (all frames), refined by a parabola
   through the smallest three. Each tracklet is first smoothed in time (Gaussian,
   `smooth_frames`), which removes most per-detection noise and delays nothing.
4. The views are resampled only when some offset is at least `min_shift_frames` (half a frame:
   below it each view's nearest frame is already the common one, and in-sync takes keep every
   frame untouched; the estimates are still reported).
5. Confidence: how much the best offset stands out of the cost curve: (median - best) / median
   (the contrast: zero when everybody stands still, since then every offset looks the same) times
   (second best farther than `exclude_s` - best) / (median - best) (uniqueness) times the
   agreement of the offsets found on each half of the take alone (1 - spread /
   `max_spread_frames`: people walking straight on leave a time offset and a constant position
   error hard to tell apart, and the halves then disagree). Takes shorter than `min_take_s` are
   not synchronised. Below
   `min_confidence` a view keeps its offset (0) and a note says why.
"""

import dataclasses

import numpy as np

from ..options import MotionSyncOptions
from ..geometry.rotations import (axis_angle_to_quaternion, make_sign_continuous,
                                  matrix_to_quaternion, quaternion_to_axis_angle,
                                  quaternion_to_matrix)


MAX_GAP = 4       # frames a tracklet may miss and still continue
FINE_STEP = 0.1   # frames, the fine search grid (then a parabola)


@dataclasses.dataclass
class MotionSync:
    offsets: np.ndarray           # frames per view: view frame t + offset shows reference frame t
    confidence: np.ndarray        # 0..1 per view (1 for the reference)
    reference: int
    notes: list
    curves: list = None           # (offsets, cost) per view, for inspection

    def seconds(self, fps):
        return self.offsets / fps


def link_tracklets(time, head, num_frames, gate, max_gap=MAX_GAP):
    """Tracklet id per detection of one view: one-to-one nearest links to tracklets last seen up
    to `max_gap` frames before (gate growing with the gap), so missed detections do not split."""
    from scipy.optimize import linear_sum_assignment

    ids = np.full(len(time), -1, dtype=np.int64)
    order = np.argsort(time, kind="stable")
    bounds = np.searchsorted(time[order], np.arange(num_frames + 1))
    last_pos, last_t = [], []
    for t in range(num_frames):
        cur = order[bounds[t]:bounds[t + 1]]
        live = [k for k in range(len(last_t)) if t - last_t[k] <= max_gap]
        if live and len(cur):
            pos = np.asarray([last_pos[k] for k in live])
            gaps = t - np.asarray([last_t[k] for k in live], dtype=np.float64)
            d = np.linalg.norm(pos[:, None] - head[cur][None], axis=-1)
            limit = (gate * gaps)[:, None]
            rows, cols = linear_sum_assignment(np.where(d <= limit, d / gaps[:, None], 1e6))
            for r, c in zip(rows, cols):
                if d[r, c] <= limit[r, 0]:
                    ids[cur[c]] = live[r]
        for i in cur:
            if ids[i] < 0:
                ids[i] = len(last_t)
                last_pos.append(None)
                last_t.append(t)
            last_pos[ids[i]], last_t[ids[i]] = head[i], t
    return ids


def _track_arrays(ids, time, values, num_frames):
    """(N, T, C) per-tracklet values, gaps inside a tracklet filled linearly, NaN elsewhere."""
    n = int(ids.max()) + 1 if len(ids) else 0
    out = np.full((n, num_frames, values.shape[-1]), np.nan)
    out[ids, time] = values
    frames = np.arange(num_frames)
    for k in range(n):
        seen = np.flatnonzero(np.isfinite(out[k, :, 0]))
        if len(seen) > 1 and len(seen) < seen[-1] - seen[0] + 1:
            inner = frames[seen[0]:seen[-1] + 1]
            for c in range(values.shape[-1]):
                out[k, inner, c] = np.interp(inner, seen, out[k, seen, c])
    return out


def _at(tracks, u):
    """Tracks (N, T, C) linearly interpolated at times u (K,): (N, K, C), NaN outside/at gaps."""
    num_frames = tracks.shape[1]
    i = np.floor(u).astype(np.int64)
    f = (u - i)[None, :, None]
    inside = (i >= 0) & (i <= num_frames - 1)
    i0 = np.clip(i, 0, num_frames - 1)
    i1 = np.clip(i + 1, 0, num_frames - 1)
    a, b = tracks[:, i0], tracks[:, i1]
    exact = f < 1e-9
    out = np.where(exact, a, (1 - f) * a + f * b)
    out[:, ~inside] = np.nan
    return out


def _smooth(tracks, sigma):
    """Gaussian smoothing along time of (N, T, C) tracks with NaN gaps (normalised convolution:
    symmetric, so it delays nothing, and the same in every view)."""
    if sigma <= 0 or tracks.shape[1] < 3 or tracks.shape[0] == 0:
        return tracks
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    seen = np.isfinite(tracks[..., :1]).astype(np.float64)
    values = np.nan_to_num(tracks)
    length = tracks.shape[1]
    conv = lambda x: np.apply_along_axis(  # noqa: E731
        lambda r: np.convolve(r, kernel, mode="full")[radius:radius + length], 1, x)
    weight = conv(seen)
    out = conv(values * seen) / np.maximum(weight, 1e-12)
    return np.where(seen > 0, out, np.nan)


def _lanes(tracks):
    """Lane per tracklet: tracklets that do not overlap in time (with two frames between, so no
    interpolation reaches from one to the next) share a lane. Few lanes (about the number of
    people) instead of many short tracklets keep the cost arrays small."""
    seen = np.isfinite(tracks[..., 0])
    first = np.argmax(seen, axis=1)
    last = tracks.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1)
    lane = np.zeros(len(tracks), dtype=np.int64)
    ends = []
    for k in np.argsort(first, kind="stable"):
        free = [j for j, end in enumerate(ends) if end + 2 <= first[k]]
        j = free[0] if free else len(ends)
        if not free:
            ends.append(0)
        ends[j] = last[k]
        lane[k] = j
    return lane, len(ends)


def _pack(tracks, lane, count):
    out = np.full((count,) + tracks.shape[1:], np.nan)
    for k, j in enumerate(lane):
        seen = np.isfinite(tracks[k, :, 0])
        out[j, seen] = tracks[k, seen]
    return out


class _View:
    def __init__(self, time, head, forward, num_frames, gate, sigma=0.0):
        self.ids = link_tracklets(time, head, num_frames, gate)
        head_tracks = _smooth(_track_arrays(self.ids, time, head, num_frames), sigma)
        forward_tracks = _smooth(_track_arrays(self.ids, time, forward, num_frames), sigma)
        lane, count = _lanes(head_tracks)
        self.head = _pack(head_tracks, lane, count)
        self.forward = _pack(forward_tracks, lane, count)
        self.time, self.count = time, len(time)


def _cost(ref, view, delta, opts, stride=1, passes=2, part=None):
    """Mean truncated cost of the reference's detections against `view` shifted by `delta`.

    Two passes: nearest neighbours give the matched pairs, whose mean difference is the two
    views' constant disagreement (camera pose errors shift a whole view's people); the cost is
    then taken with that shift removed, so a constant error is not mistaken for a time offset of
    people walking along it."""
    lo, hi = part or (0, ref.head.shape[1])
    t_all = np.arange(lo, hi, stride, dtype=np.float64)
    ref_head, ref_forward = ref.head[:, lo:hi:stride], ref.forward[:, lo:hi:stride]
    head_v = _at(view.head, t_all + delta)       # (Nv, T, 3)
    fwd_v = _at(view.forward, t_all + delta)
    fwd_v = fwd_v / np.linalg.norm(fwd_v, axis=-1, keepdims=True)
    has_v = np.isfinite(head_v[..., 0]).any(0)   # (T,)
    use = np.isfinite(ref_head[..., 0]) & has_v[None]
    n = int(use.sum())
    if n < opts.min_common / stride:
        return np.inf, n
    o2 = np.sum((ref_forward[:, None] - fwd_v[None]) ** 2, -1) * opts.orientation_m ** 2
    diff = ref_head[:, None] - head_v[None]      # (Nr, Nv, T, 3)
    shift = np.zeros(3)
    keep = max(1, int(round(opts.keep_fraction * n)))
    for _ in range(passes):
        cost = np.sum((diff - shift) ** 2, -1) + o2
        cost = np.where(np.isnan(cost), np.inf, cost)
        pick = np.argmin(cost, axis=1)           # (Nr, T)
        best = np.minimum(np.take_along_axis(cost, pick[:, None], 1)[:, 0], opts.truncate_m ** 2)
        values = best[use]
        cut = np.partition(values, keep - 1)[keep - 1]
        inlier = use & (best <= cut) & (best < opts.truncate_m ** 2)
        if not inlier.any():
            break
        matched = np.take_along_axis(diff, pick[:, None, :, None], 1)[:, 0]  # (Nr, T, 3)
        shift = matched[inlier].mean(0)
        norm = np.linalg.norm(shift)
        if norm > opts.max_disagreement_m:  # a bounded constant: a larger one is a time offset
            shift *= opts.max_disagreement_m / norm
    return float(np.sort(values)[:keep].mean()), n


def _coarse_costs(ref, view, deltas, opts, stride):
    """`_cost` with one pass (no constant removed) for many offsets at once (vectorised)."""
    t = np.arange(0, ref.head.shape[1], stride, dtype=np.float64)
    ref_head, ref_forward = ref.head[:, ::stride], ref.forward[:, ::stride]
    u = (t[None, :] + deltas[:, None]).ravel()
    head_v = _at(view.head, u).reshape(len(view.head), len(deltas), len(t), 3)
    fwd_v = _at(view.forward, u).reshape(len(view.forward), len(deltas), len(t), 3)
    fwd_v = fwd_v / np.linalg.norm(fwd_v, axis=-1, keepdims=True)
    cost = np.sum((ref_head[:, None, None] - head_v[None]) ** 2, -1)          # (Nr, Nv, D, T)
    cost += np.sum((ref_forward[:, None, None] - fwd_v[None]) ** 2, -1) * opts.orientation_m ** 2
    best = np.minimum(np.min(np.where(np.isnan(cost), np.inf, cost), axis=1), opts.truncate_m ** 2)
    use = np.isfinite(ref_head[:, None, :, 0]) & np.isfinite(head_v[..., 0]).any(0)[None]  # (Nr, D, T)
    out = np.full(len(deltas), np.inf)
    for k in range(len(deltas)):
        values = best[:, k][use[:, k]]
        if len(values) >= opts.min_common / stride:
            keep = max(1, int(round(opts.keep_fraction * len(values))))
            out[k] = np.partition(values, keep - 1)[:keep].mean()
    return out


def _search(ref, view, fps, num_frames, opts):
    reach = int(min(round(opts.max_offset_s * fps), num_frames - 2))
    grid = np.arange(-reach, reach + 1, dtype=np.float64)
    # coarse: every whole frame, on every third reference frame, one pass
    base = max(1, num_frames // opts.max_frames)  # long takes: a bounded number of reference frames
    costs = _coarse_costs(ref, view, grid, opts, stride=3 * base)
    if not np.isfinite(costs).any():
        return None
    k = int(np.nanargmin(costs))
    best = _refine(ref, view, grid[k], opts, base)
    # precision: the same search on each half of the reference's frames must agree
    half = num_frames // 2
    halves = [_refine(ref, view, grid[k], opts, base, part) for part in ((0, half), (half, num_frames))]
    spread = abs(halves[0] - halves[1]) if all(np.isfinite(halves)) else np.inf
    finite = costs[np.isfinite(costs)]
    lowest = float(costs[k])
    median = float(np.median(finite))
    far = np.isfinite(costs) & (np.abs(grid - best) > opts.exclude_s * fps)
    second = float(costs[far].min()) if far.any() else median
    contrast = (median - lowest) / median if median > 0 else 0.0
    unique = (second - lowest) / (median - lowest) if median > lowest else 0.0
    agree = float(np.clip(1.0 - spread / opts.max_spread_frames, 0, 1)) if np.isfinite(spread) else 0.0
    confidence = float(np.clip(contrast / 0.5, 0, 1) * np.clip(unique, 0, 1) * agree)
    return best, confidence, (grid, costs)


def _refine(ref, view, start, opts, stride, part=None):
    """Offset minimising the cost within +-1 frame of `start`: 0.1-frame grid, then a parabola."""
    step = FINE_STEP
    for _ in range(4):  # a minimum at the window's edge: the window moves there (the coarse pick
        fine = start + np.arange(-1.0, 1.0 + 1e-9, step)  # ignores the constant disagreement)
        costs = np.array([_cost(ref, view, d, opts, stride=stride, part=part)[0] for d in fine])
        if not np.isfinite(costs).any():
            return np.inf
        j = int(np.argmin(costs))
        if 0 < j < len(fine) - 1:
            break
        start = fine[j]
    best = fine[j]
    if 0 < j < len(fine) - 1 and np.all(np.isfinite(costs[j - 1:j + 2])):
        y0, y1, y2 = costs[j - 1:j + 2]
        denom = y0 - 2 * y1 + y2
        if denom > 0:
            best += step * float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    return float(best)


def estimate_offsets(time, view, head, forward, num_views, num_frames, fps, options=None):
    """Per-view offsets (frames) from world head positions and forward directions of detections.

    time, view: (D,) ints; head, forward: (D, 3) in metres (forward unit vectors).
    """
    opts = options or MotionSyncOptions()
    offsets = np.zeros(num_views)
    confidence = np.zeros(num_views)
    notes, curves = [], [None] * num_views
    if num_views < 2:
        return MotionSync(offsets, np.ones(num_views), 0, notes, curves)
    if num_frames < opts.min_take_s * fps:
        notes.append(f"the take is shorter than {opts.min_take_s:g} s: too short to sync by motion; "
                     "views taken as synchronised")
        return MotionSync(offsets, confidence, 0, notes, curves)
    views = [_View(time[view == v], head[view == v], forward[view == v], num_frames, opts.link_gate_m,
                   opts.smooth_frames) for v in range(num_views)]
    ref = int(np.argmax([v.count for v in views]))
    confidence[ref] = 1.0
    for v in range(num_views):
        if v == ref:
            continue
        found = _search(views[ref], views[v], fps, num_frames, opts) if views[v].count else None
        if found is None:
            notes.append(f"view {v}: too few detections seen together with view {ref} to sync by motion")
            continue
        best, conf, curves[v] = found
        confidence[v] = conf
        if conf < opts.min_confidence:
            notes.append(f"view {v}: motion does not fix its offset (confidence {conf:.2f}: people "
                         "standing still or too few seen by both views); kept unshifted")
            continue
        offsets[v] = best
    return MotionSync(offsets, confidence, ref, notes, curves)


def forward_directions(root_world):
    """Body forward (+Z of the SMPL-X root) in the world, from (D, 3, 3) root rotations."""
    return root_world[:, :, 2]


def _interp_rotvec(a, b, f):
    """Axis-angle arrays (..., 3) interpolated at fraction f (normalised quaternion lerp)."""
    qa, qb = axis_angle_to_quaternion(a), axis_angle_to_quaternion(b)
    qb = np.where(np.sum(qa * qb, -1, keepdims=True) < 0, -qb, qb)
    q = (1 - f) * qa + f * qb
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return quaternion_to_axis_angle(q)


def _interp_cameras(c2w, K, u):
    """(T, 4, 4), (T, 3, 3) cameras of one view at fractional times u (K,)."""
    num_frames = c2w.shape[0]
    i = np.clip(np.floor(u).astype(np.int64), 0, num_frames - 1)
    j = np.clip(i + 1, 0, num_frames - 1)
    f = np.clip(u - i, 0.0, 1.0)
    q = make_sign_continuous(matrix_to_quaternion(c2w[:, :3, :3]))
    qa, qb = q[i], q[j]
    qb = np.where(np.sum(qa * qb, -1, keepdims=True) < 0, -qb, qb)
    qi = (1 - f)[:, None] * qa + f[:, None] * qb
    qi /= np.linalg.norm(qi, axis=-1, keepdims=True)
    out = np.zeros((len(u), 4, 4))
    out[:, :3, :3] = quaternion_to_matrix(qi)
    out[:, :3, 3] = (1 - f)[:, None] * c2w[i, :3, 3] + f[:, None] * c2w[j, :3, 3]
    out[:, 3, 3] = 1.0
    Ki = (1 - f)[:, None, None] * K[i] + f[:, None, None] * K[j]
    whole = f < 1e-9  # whole frames: the cameras themselves
    out[whole], Ki[whole] = c2w[i[whole]], K[i[whole]]
    return out, Ki


DET_KEYS = ("det_score", "det_head_2d", "det_pelvis_2d", "det_head_cam", "det_rotvec", "det_betas",
            "det_expression")


def resample_views(views, offsets, gate=0.35, head_world=None):  # gate in network units
    """A Views on the common timeline: view v's frame k + k0 + offsets[v] becomes timestep k.

    Detections between two frames of one tracklet are interpolated (positions and shapes
    linearly, rotations by quaternion lerp); a detection whose tracklet does not continue is
    kept when it is the nearer frame. Cameras are interpolated the same way. Returns
    (Views, k0): the first common timestep in the reference's frames.
    """
    from ..io.views import Views

    offsets = np.asarray(offsets, dtype=np.float64)
    num_views, num_frames, fps = views.num_views, views.num_frames, views.fps
    k0 = int(np.ceil(max(0.0, -offsets.min()) - 1e-9))
    count = int(np.floor(min(num_frames - 1 - offsets.max(), num_frames - 1) - k0 + 1e-9)) + 1
    if count < 2:
        return None, k0
    ks = np.arange(count, dtype=np.float64)
    det_view = np.asarray(views.det_view)
    det_time = np.asarray(views.det_time)
    if head_world is None:
        c2w = np.asarray(views.cam_c2w, np.float64)
        rot = c2w[det_view, det_time, :3, :3]
        head_world = np.einsum("dij,dj->di", rot, np.asarray(views.det_head_cam, np.float64)) + \
            c2w[det_view, det_time, :3, 3]
    arrays = {k: np.asarray(getattr(views, k)) for k in DET_KEYS}
    out = {k: [] for k in DET_KEYS}
    out_view, out_time, out_src = [], [], []
    cam_c2w = np.zeros((num_views, count, 4, 4))
    cam_K = np.zeros((num_views, count, 3, 3))
    for v in range(num_views):
        u = ks + k0 + offsets[v]
        cam_c2w[v], cam_K[v] = _interp_cameras(np.asarray(views.cam_c2w[v], np.float64),
                                               np.asarray(views.cam_K[v], np.float64), u)
        sel = np.flatnonzero(det_view == v)
        if not len(sel):
            continue
        ids = link_tracklets(det_time[sel], head_world[sel], num_frames, gate)
        table = np.full((int(ids.max()) + 1, num_frames), -1, dtype=np.int64)
        table[ids, det_time[sel]] = sel
        i = np.floor(u + 1e-9).astype(np.int64)
        f = u - i
        for k in range(count):
            a = table[:, i[k]] if 0 <= i[k] < num_frames else np.full(len(table), -1)
            b = table[:, i[k] + 1] if 0 <= i[k] + 1 < num_frames else np.full(len(table), -1)
            for da, db in zip(a, b):
                if f[k] < 1e-6 or (da >= 0 and db < 0 and f[k] <= 0.5):
                    pick = da
                elif da < 0 and db >= 0 and f[k] >= 0.5:
                    pick = db
                elif da >= 0 and db >= 0:
                    pick = None
                else:
                    continue
                if pick is not None:
                    if pick < 0:
                        continue
                    out_src.append(pick)
                    for key in DET_KEYS:
                        out[key].append(arrays[key][pick])
                else:
                    w = f[k]
                    out_src.append(da if w <= 0.5 else db)
                    for key in DET_KEYS:
                        if key == "det_rotvec":
                            out[key].append(_interp_rotvec(arrays[key][da], arrays[key][db], w))
                        elif key == "det_score":
                            out[key].append(min(arrays[key][da], arrays[key][db]))
                        else:
                            out[key].append((1 - w) * arrays[key][da] + w * arrays[key][db])
                out_view.append(v)
                out_time.append(k)
    order = np.lexsort((np.asarray(out_view), np.asarray(out_time))) if out_view else np.zeros(0, np.int64)
    det = {}
    for key in DET_KEYS:
        template = arrays[key]
        stacked = np.asarray(out[key], dtype=np.float32).reshape((-1,) + template.shape[1:])
        det[key] = stacked[order] if len(stacked) else stacked
    point_time = None
    if views.point_time is not None:
        pv = np.asarray(views.point_view) if views.point_view is not None else np.zeros(len(views.point_time), int)
        shifted = np.asarray(views.point_time) - k0 - offsets[np.clip(pv, 0, num_views - 1)]
        point_time = np.clip(np.round(shifted), 0, count - 1).astype(np.int32)
    meta = dict(views.meta)
    extra = dict(views.extra)
    src = np.asarray(out_src, np.int64)[order]
    for key, value in views.extra.items():  # per-detection extras follow the nearer source
        value = np.asarray(value)
        if value.ndim and value.shape[0] == len(det_view) and len(det_view) > 1:
            extra[key] = value[src]
    resampled = Views(meta=meta, image_size=np.asarray(views.image_size), cam_K=cam_K.astype(np.float32),
                      cam_c2w=cam_c2w.astype(np.float32),
                      det_view=np.asarray(out_view, np.int32)[order],
                      det_time=np.asarray(out_time, np.int32)[order], points=views.points,
                      colors=views.colors, point_view=views.point_view, point_time=point_time,
                      point_conf=views.point_conf, extra=extra, **det)
    return resampled, k0


def sync_views(views, head_world, root_world, det_time, det_view, options=None, scale=1.0):
    """Estimate the offsets from detections (world heads in metres: network units x `scale`)
    and resample the views.

    Returns (Views, info dict for the take's meta). Views are returned unchanged when no view
    needs shifting.
    """
    opts = options or MotionSyncOptions()
    fps = views.fps
    result = estimate_offsets(det_time, det_view, head_world, forward_directions(root_world),
                              views.num_views, views.num_frames, fps, opts)
    info = {"method": "motion", "reference": int(result.reference),
            "offsets_frames": [float(o) for o in result.offsets],
            "offsets_s": [float(o / fps) for o in result.offsets],
            "confidence": [float(c) for c in result.confidence], "notes": list(result.notes)}
    if not np.any(np.abs(result.offsets) >= opts.min_shift_frames):
        info["start_frame"] = 0
        info["applied"] = False
        return views, info
    info["applied"] = True
    resampled, k0 = resample_views(views, result.offsets, gate=opts.link_gate_m / scale)
    if resampled is None:
        info["notes"].append("the offsets found leave no common time between the views; not applied")
        info["offsets_frames"] = [0.0] * views.num_views
        info["offsets_s"] = [0.0] * views.num_views
        info["start_frame"] = 0
        return views, info
    info["start_frame"] = k0
    meta = resampled.meta
    if "offsets_s" in meta:
        meta["offsets_s"] = [float(o) + d / fps for o, d in zip(meta["offsets_s"], result.offsets)]
    if "start_s" in meta:
        meta["start_s"] = float(meta["start_s"]) + k0 / fps
    return resampled, info
