"""Clips -> take: decode and sample, network in windows, merge, fuse, write (and build).

Frames stream from the decoders into one fixed window buffer (window x views frames), so memory
is bounded by the window size whatever the take length. Every output is written to a staging
folder beside its target and moved into place only when everything succeeded.
"""

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..errors import ChrommError
from ..network.interface import check_device  # noqa: F401 (re-exported)
from ..network.registry import load_runner, missing_weights  # noqa: F401 (re-exported)
from ..options import ReconstructOptions, to_dict, validate  # noqa: F401 (ReconstructOptions re-exported)
from .limits import MIN_WINDOW
from .timeline import open_clips, plan_timeline, sample
from .windows import WindowMerger, plan_overlap


class Cancelled(Exception):
    """The job was cancelled; raised between timesteps and between stages."""


@dataclasses.dataclass
class Stats:
    timesteps: int = 0
    windows: int = 0
    window_size: int = 0
    overlap: int = 0
    buffer_frames: int = 0       # frames the window buffer holds (window x views)
    window_calls: list = dataclasses.field(default_factory=list)  # timesteps per network call
    seconds: dict = dataclasses.field(default_factory=dict)       # per stage
    detections: int = 0
    notes: list = dataclasses.field(default_factory=list)          # what was assumed (known cameras)


def check_window(requested):
    if requested is not None and int(requested) < MIN_WINDOW:
        raise ChrommError(f"--window {requested}: a window needs at least {MIN_WINDOW} timesteps")


def choose_window(runner, clips, count, requested=None):
    check_window(requested)
    if requested is not None:
        size = int(requested)
    else:
        image_hw = (max(c.height for c in clips), max(c.width for c in clips))
        size = int(runner.window_size(image_hw, len(clips)))
    return max(MIN_WINDOW, min(size, count))


def _is_out_of_memory(exc):
    if isinstance(exc, MemoryError):
        return True
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _free_device_memory():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


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


class WindowedReconstruction:
    """Runs the network over the sampled timesteps in overlapping windows and merges them."""

    def __init__(self, runner, clips, fps, size, progress, total, stats, rig=None):
        self.runner, self.clips, self.fps = runner, clips, fps
        self.known = {"cameras": rig.cameras} if rig is not None else {}
        self.names = [c.name for c in clips]
        self.size, self.overlap = size, plan_overlap(size)
        self.buffer = WindowBuffer(clips, size)
        self.merger = WindowMerger(fps, self.names)
        self.start = 0
        self.progress, self.total, self.stats = progress, total, stats
        stats.window_size, stats.overlap, stats.buffer_frames = size, self.overlap, self.buffer.frames_held

    def push(self, frames):
        self.buffer.put(frames)
        if self.buffer.count == self.buffer.capacity:
            self._drain(final=False)

    def finish(self):
        self._drain(final=True)
        return self.merger.views()

    def _drain(self, final):
        while True:
            unmerged = self.start + self.buffer.count - self.merger.committed
            if self.buffer.count == 0 or unmerged <= 0:
                return
            if not final and self.buffer.count < self.size:
                return
            m = min(self.buffer.count, self.size)
            t0 = time.perf_counter()
            try:
                views = self.runner.run_window(self.buffer.window(m), self.names, self.fps, **self.known)
            except Exception as exc:
                if not _is_out_of_memory(exc):
                    raise
                self._shrink(exc)
                continue
            self.stats.seconds["network"] = self.stats.seconds.get("network", 0.0) + time.perf_counter() - t0
            self.stats.window_calls.append(m)
            t0 = time.perf_counter()
            self.merger.add(views, self.start)
            self.stats.seconds["merge"] = self.stats.seconds.get("merge", 0.0) + time.perf_counter() - t0
            del views
            self.progress("network", self.merger.committed, max(self.total, self.merger.committed))
            if self.buffer.count > m or not final:
                advance = m - self.overlap if m > self.overlap else m
                self.buffer.shift(advance)
                self.start += advance
            else:
                return

    def _shrink(self, exc):
        _free_device_memory()
        smaller = self.size // 2
        if smaller < MIN_WINDOW or smaller <= self.merger.committed - self.start:
            raise ChrommError(f"out of {'GPU ' if 'cuda' in str(self.runner.device) else ''}memory "
                              f"even with a window of {self.size} timesteps ({exc}); use fewer or "
                              "smaller clips, or --device cpu") from None
        self.size, self.overlap = smaller, min(plan_overlap(smaller), self.overlap)
        self.stats.window_size = smaller


def reconstruct_views(options, runner=None, progress=None, cancel=None, stats=None):
    """Decode, sample and run the network in windows; returns (Views, Stats)."""
    progress = progress or (lambda *a: None)
    stats = stats or Stats()
    check = _cancel_check(cancel)
    validate(options)
    check_window(options.window)
    progress("open", 0, len(options.clips))
    t0 = time.perf_counter()
    clips, offsets = open_clips(options.clips, options.offsets, options.image_fps)
    timeline = plan_timeline(clips, offsets, options.fps, options.start, options.end)
    from .known_cameras import apply_to_views, prepare
    from .undistort import undistort_frames

    rig = prepare(options.cameras, clips)
    if rig is not None:
        stats.notes.extend(rig.notes)
    stats.seconds["open"] = time.perf_counter() - t0
    progress("open", len(clips), len(clips))
    check()
    runner = runner or load_runner(options)
    size = choose_window(runner, clips, timeline.count, options.window)
    work = WindowedReconstruction(runner, clips, timeline.fps, size, progress, timeline.count, stats, rig)
    undistorters = rig.undistorters if rig is not None else []
    progress("network", 0, timeline.count)
    decode = 0.0
    frames_iter = sample(clips, offsets, timeline, cancel=check)
    t_dec = time.perf_counter()
    for k, frames in frames_iter:
        decode += time.perf_counter() - t_dec
        if any(undistorters):
            t_und = time.perf_counter()
            frames = undistort_frames(frames, undistorters)
            stats.seconds["undistort"] = stats.seconds.get("undistort", 0.0) + time.perf_counter() - t_und
        work.push(frames)
        stats.timesteps = k + 1
        del frames
        t_dec = time.perf_counter()
    check()
    views = apply_to_views(work.finish(), rig)
    views.meta["offsets_s"] = [float(o) for o in offsets]
    views.meta["start_s"] = float(timeline.start)
    views.meta["clips"] = [os.path.basename(c.path) for c in clips]
    stats.seconds["decode"] = decode
    stats.windows = len(stats.window_calls)
    stats.detections = int(views.num_detections)
    return views, stats


def fuse(views, smplx_path=None, options=None):
    """The test-time modules with `options` (a FuseOptions)."""
    from ..body.model_file import configured_model
    from ..fusion.pipeline import fuse_views

    return fuse_views(views, smplx_model=configured_model(smplx_path), options=options)


def build_blend(take_path, blend_path, smplx_path=None):
    """Build the .blend in a child process (the backend process never imports bpy)."""
    cmd = [sys.executable, "-m", "chromm_addon", "build", take_path, "-o", blend_path]
    if smplx_path:
        cmd += ["--smplx", smplx_path]
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        message = lines[-1] if lines else f"exit status {done.returncode}"
        raise ChrommError(f"{blend_path}: building the .blend failed: {message.removeprefix('error: ')}")


def reconstruct(options, take_out, views_out=None, blend_out=None, runner=None, progress=None,
                cancel=None):
    """The whole pipeline; writes take_out (and views_out, blend_out) or nothing. Returns Stats."""
    progress = progress or (lambda *a: None)
    check = _cancel_check(cancel)
    targets = [p for p in (take_out, views_out, blend_out) if p]
    if len(set(map(os.path.abspath, targets))) != len(targets):
        raise ChrommError("the output files must be different paths")
    for path in targets:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ChrommError(f"{path}: the output folder does not exist")
    views, stats = reconstruct_views(options, runner=runner, progress=progress, cancel=cancel)
    check()
    progress("fuse", 0, 1)
    t0 = time.perf_counter()
    take = fuse(views, options.smplx, options.fuse)
    take.meta["options"] = to_dict(options)
    if views.meta.get("known_cameras"):
        take.meta["known_cameras"] = views.meta["known_cameras"]
    # Where each view's clip is and its time at timestep 0, for the cameras' backgrounds.
    take.meta["sources"] = [{"path": os.path.abspath(path), "start_time": views.meta["start_s"] + offset}
                            for path, offset in zip(options.clips, views.meta["offsets_s"])]
    lenses = (views.meta.get("known_cameras") or {}).get("distortion") or []
    for source, lens in zip(take.meta["sources"], lenses):
        if lens:    # the clip's lens, so Blender can show it undistorted (blender/render_setup.py)
            source["lens"] = lens
    stats.seconds["fuse"] = time.perf_counter() - t0
    progress("fuse", 1, 1)
    check()
    from ..io.take import write_take
    from ..io.views import write_views

    progress("write", 0, len(targets))
    t0 = time.perf_counter()
    with _staging(targets) as staged:
        write_take(staged[take_out], take)
        if views_out:
            write_views(staged[views_out], views)
        stats.seconds["write"] = time.perf_counter() - t0
        check()
        if blend_out:
            progress("build", 0, 1)
            t0 = time.perf_counter()
            build_blend(staged[take_out], staged[blend_out], options.smplx)
            stats.seconds["build"] = time.perf_counter() - t0
            progress("build", 1, 1)
            check()
    progress("write", len(targets), len(targets))
    return stats


class _staging:
    """Staging folders beside each target; on success every staged file is moved onto its target."""

    def __init__(self, targets):
        self._originals = list(targets)
        self.targets = [os.path.abspath(t) for t in targets]

    def __enter__(self):
        self.folders = {}
        staged = {}
        for original, target in zip(self._originals, self.targets):
            folder = os.path.dirname(target)
            if folder not in self.folders:
                self.folders[folder] = tempfile.mkdtemp(prefix=".chromm-stage-", dir=folder)
            staged[original] = os.path.join(self.folders[folder], os.path.basename(target))
        self.staged = staged
        return staged

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                for original, target in zip(self._originals, self.targets):
                    os.replace(self.staged[original], target)
        finally:
            for folder in self.folders.values():
                shutil.rmtree(folder, ignore_errors=True)
        return False


def _cancel_check(cancel):
    if cancel is None:
        return lambda: None
    if callable(cancel) and not hasattr(cancel, "is_set"):
        return cancel

    def check():
        if cancel.is_set():
            raise Cancelled()

    return check
