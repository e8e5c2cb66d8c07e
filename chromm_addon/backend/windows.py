"""Long takes in windows: Sim(3) alignment of overlapping windows and merging into one views file.

The network sees `size` timesteps at a time (all views together); consecutive windows share
`overlap` timesteps. Each window comes back in its own world frame and scale, so window w is
brought into the frame of window 0 by the similarity (scale, rotation, translation) that best maps
its overlapping timesteps onto the already-aligned previous window (Umeyama with scale):

- camera centres of every view at every shared timestep, plus the cameras' orientations (which
  fix the rotation even when the centres are nearly collinear or coincide, e.g. one still camera),
- the centroid of each (view, timestep)'s scene points, when both windows have points there,
- head positions of detections matched by their 2D head pixel in the same view and timestep.

The shared timesteps keep the earlier window's values; the later window contributes only what
follows. Person identities are not matched here: all detections go into one views file in one
frame and the test-time tracking (fuse) links them over the whole take, so identities carry
across window borders the same way they carry from one timestep to the next.

The work splits in three, so that one machine and a cluster run the same steps: `WindowSource`
cuts the sampled timesteps into windows of frames (CPU, close to the clips), a network runner
turns each window into a Views object on its own (GPU, in any order, on any worker), and
`WindowMerger` aligns and merges those outputs in take order (needs only the outputs).
"""

import dataclasses

import numpy as np

from ..geometry.similarity import Sim3, umeyama
from ..io.views import Views, make_meta

DETECTION_KEYS = ("det_score", "det_head_2d", "det_pelvis_2d", "det_head_cam", "det_rotvec",
                  "det_betas", "det_expression")
POINT_KEYS = ("points", "colors", "point_view", "point_time", "point_conf")


def plan_overlap(size):
    """Shared timesteps between windows of `size` timesteps: a quarter, 1..16, below the size."""
    return int(max(1, min(16, size // 4, size - 1)))


def plan_windows(count, size):
    """(start, length) of each window over `count` timesteps; what `WindowSource` yields when no
    window has to shrink."""
    size = max(1, min(int(size), int(count)))
    overlap = plan_overlap(size)
    spans, start = [], 0
    while True:
        end = min(start + size, count)
        spans.append((start, end - start))
        if end >= count:
            return spans
        start += size - overlap if size > overlap else size


class WindowBuffer:
    """Preallocated frames per view for one window; `shift` keeps the overlap at the front."""

    def __init__(self, clips, capacity):
        self.capacity = capacity
        self.arrays = [np.empty((capacity, c.height, c.width, 3), np.uint8) for c in clips]
        self.count = 0

    @property
    def frames_held(self):
        return self.capacity * len(self.arrays)

    def put(self, frames):
        for array, frame in zip(self.arrays, frames):
            array[self.count] = frame
        self.count += 1

    def window(self, size):
        return [a[:size] for a in self.arrays]

    def shift(self, n):
        keep = self.count - n
        for a in self.arrays:
            a[:keep] = a[n:self.count].copy()
        self.count = keep


class WindowSource:
    """Sampled timesteps -> overlapping windows of frames, in take order, holding one window.

    `samples` yields (k, [frame per clip]) (timeline.sample). `next_window()` gives
    (start, [frames per view, (m, H, W, 3)]) or None after the last window; the arrays are views
    into the buffer, valid until the next call. `shrink(size)` makes the next call give the
    window just handed out again, cut to `size` timesteps (out-of-memory retry).
    """

    def __init__(self, clips, samples, size):
        self.samples = iter(samples)
        self.size, self.overlap = int(size), plan_overlap(size)
        self.buffer = WindowBuffer(clips, self.size)
        self.start = 0
        self.timesteps = 0          # timesteps sampled so far
        self.handed_out = 0         # timesteps covered by the windows handed out
        self._previous = 0          # handed_out before the last window
        self._advance = 0
        self._exhausted = False

    def next_window(self):
        if self._advance:
            self.buffer.shift(self._advance)
            self.start += self._advance
            self._advance = 0
        while self.buffer.count < self.size and not self._exhausted:
            item = next(self.samples, None)
            if item is None:
                self._exhausted = True
                break
            k, frames = item
            self.buffer.put(frames)
            self.timesteps = k + 1
            del frames, item
        if self.buffer.count == 0 or self.start + self.buffer.count <= self.handed_out:
            return None
        m = min(self.buffer.count, self.size)
        self._previous, self.handed_out = self.handed_out, self.start + m
        self._advance = m - self.overlap if m > self.overlap else m
        return self.start, self.buffer.window(m)

    def shrink(self, size):
        """Hand out the last window again at `size` timesteps; False when `size` cannot keep the
        overlap with the window before it."""
        if size < 1 or size <= self._previous - self.start:
            return False
        self.size, self.overlap = int(size), min(plan_overlap(size), self.overlap)
        self.handed_out, self._advance = self._previous, 0
        return True

    def close(self):
        close = getattr(self.samples, "close", None)
        if close is not None:
            close()


def transform_views(views, sim):
    """A copy of `views` in the frame that `sim` maps its world to (camera-frame values scale)."""
    out = dataclasses.replace(views, extra=dict(views.extra))
    out.cam_c2w = sim.apply_c2w(views.cam_c2w).astype(np.float32)
    out.det_head_cam = (views.det_head_cam * sim.scale).astype(np.float32)
    if views.points is not None:
        out.points = sim.apply(views.points).astype(np.float32)
    return out


def _head_world(views):
    c2w = views.cam_c2w[views.det_view, views.det_time].astype(np.float64)
    return np.einsum("nij,nj->ni", c2w[:, :3, :3], views.det_head_cam) + c2w[:, :3, 3]


def correspondences(reference, ref_start, window, overlap, match_px=0.05):
    """Point pairs (window frame -> reference frame) and rotation pairs over the shared timesteps.

    `reference` is the previous window in the merged frame, its timestep 0 at `ref_start` frames
    before the new window's timestep 0 (so window timestep j is reference timestep ref_start + j).
    """
    src, dst, src_r, dst_r = [], [], [], []
    num_views = window.num_views
    for j in range(overlap):
        rj = ref_start + j
        if rj >= reference.num_frames or j >= window.num_frames:
            break
        for v in range(num_views):
            src.append(window.cam_c2w[v, j, :3, 3])
            dst.append(reference.cam_c2w[v, rj, :3, 3])
            src_r.append(window.cam_c2w[v, j, :3, :3])
            dst_r.append(reference.cam_c2w[v, rj, :3, :3])
    if window.points is not None and reference.points is not None and \
            window.point_view is not None and reference.point_view is not None:
        for j in range(overlap):
            rj = ref_start + j
            for v in range(num_views):
                a = window.points[(window.point_view == v) & (window.point_time == j)]
                b = reference.points[(reference.point_view == v) & (reference.point_time == rj)]
                if len(a) >= 8 and len(b) >= 8:
                    src.append(a.mean(axis=0))
                    dst.append(b.mean(axis=0))
    if window.num_detections and reference.num_detections:
        heads_w, heads_r = _head_world(window), _head_world(reference)
        for j in range(overlap):
            rj = ref_start + j
            for v in range(num_views):
                iw = np.flatnonzero((window.det_view == v) & (window.det_time == j))
                ir = np.flatnonzero((reference.det_view == v) & (reference.det_time == rj))
                if not len(iw) or not len(ir):
                    continue
                limit = match_px * float(np.hypot(*window.image_size[v]))
                dist = np.linalg.norm(window.det_head_2d[iw][:, None] - reference.det_head_2d[ir][None],
                                      axis=2)
                for a in range(len(iw)):  # mutual nearest neighbours within the limit
                    b = int(np.argmin(dist[a]))
                    if int(np.argmin(dist[:, b])) == a and dist[a, b] <= limit:
                        src.append(heads_w[iw[a]])
                        dst.append(heads_r[ir[b]])
    return (np.asarray(src, np.float64).reshape(-1, 3), np.asarray(dst, np.float64).reshape(-1, 3),
            np.asarray(src_r, np.float64).reshape(-1, 3, 3), np.asarray(dst_r, np.float64).reshape(-1, 3, 3))


def align_window(reference, ref_start, window, overlap):
    src, dst, src_r, dst_r = correspondences(reference, ref_start, window, overlap)
    if not len(src):
        return Sim3()
    return umeyama(src, dst, src_rotations=src_r, dst_rotations=dst_r)


class WindowMerger:
    """Collects windows (in take order) into one views file in the first window's frame.

    Holds only the merged outputs (cameras, detections, a bounded number of points) and the
    previous window; never frames.
    """

    def __init__(self, fps, view_names, max_points=500_000, seed=0):
        self.fps, self.view_names = float(fps), list(view_names)
        self.max_points = int(max_points)
        self._rng = np.random.default_rng(seed)
        self._cams_K, self._cams_c2w = [], []
        self._dets = {k: [] for k in ("det_view", "det_time") + DETECTION_KEYS}
        self._points = {k: [] for k in POINT_KEYS}
        self._num_points = 0
        self.committed = 0          # timesteps merged so far
        self._previous = None       # (aligned window, its first timestep)
        self.meta = None
        self.image_size = None
        self.transforms = []        # (first timestep, Sim3) per window

    def add(self, window, start):
        """Merge `window` (a Views for timesteps start .. start + T - 1) whose first timesteps
        overlap the last ones merged; timesteps already merged keep their values."""
        if self.meta is None:
            self.meta, self.image_size = dict(window.meta), window.image_size
            sim = Sim3()
        else:
            prev, prev_start = self._previous
            overlap = self.committed - start
            sim = align_window(prev, start - prev_start, window, overlap)
        aligned = transform_views(window, sim)
        self.transforms.append((start, sim))
        skip = self.committed - start  # shared timesteps, already merged
        self._commit(aligned, start, skip)
        self._previous = (aligned, start)

    def _commit(self, views, start, skip):
        self._cams_K.append(views.cam_K[:, skip:])
        self._cams_c2w.append(views.cam_c2w[:, skip:])
        keep = views.det_time >= skip
        self._dets["det_view"].append(views.det_view[keep])
        self._dets["det_time"].append((views.det_time[keep] + start).astype(np.int32))
        for k in DETECTION_KEYS:
            self._dets[k].append(getattr(views, k)[keep])
        if views.points is not None:
            keep_p = np.ones(len(views.points), bool) if views.point_time is None else views.point_time >= skip
            for k in POINT_KEYS:
                value = getattr(views, k)
                if value is None:
                    value = self._default_point_value(k, views, len(views.points))
                value = value[keep_p]
                if k == "point_time":
                    value = (value + start).astype(np.int32)
                self._points[k].append(value)
            self._num_points += int(keep_p.sum())
            if self._num_points > self.max_points:
                self._thin_points()
        self.committed = start + views.num_frames

    @staticmethod
    def _default_point_value(key, views, n):
        if key == "point_view":
            return np.zeros(n, np.int32)
        if key == "point_time":
            return np.zeros(n, np.int32)
        if key == "point_conf":
            return np.ones(n, np.float32)
        raise KeyError(key)

    def _thin_points(self):
        """Keep a uniform random subset of max_points, so memory stays bounded on long takes."""
        merged = {k: np.concatenate(v) for k, v in self._points.items()}
        keep = np.sort(self._rng.choice(self._num_points, self.max_points, replace=False))
        self._points = {k: [v[keep]] for k, v in merged.items()}
        self._num_points = self.max_points

    def views(self):
        if self.meta is None:
            raise ValueError("no windows merged")
        dets = {k: np.concatenate(v) for k, v in self._dets.items()}
        meta = make_meta(self.fps, self.view_names, model=self.meta.get("model", "chromm"),
                         weights=self.meta.get("weights"),
                         **{k: v for k, v in self.meta.items()
                            if k not in ("format", "version", "fps", "views", "model", "weights")})
        meta["windows"] = [{"start": int(s), "scale": float(t.scale)} for s, t in self.transforms]
        points = {k: np.concatenate(v) for k, v in self._points.items()} if self._points["points"] else {}
        return Views(meta=meta, image_size=self.image_size,
                     cam_K=np.concatenate(self._cams_K, axis=1).astype(np.float32),
                     cam_c2w=np.concatenate(self._cams_c2w, axis=1).astype(np.float32),
                     det_view=dets["det_view"].astype(np.int32), det_time=dets["det_time"].astype(np.int32),
                     **{k: dets[k].astype(np.float32) for k in DETECTION_KEYS},
                     **{k: points.get(k) for k in POINT_KEYS})
