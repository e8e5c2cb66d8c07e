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
import time
import uuid

import numpy as np

from ..errors import ChrommError
from ..network.interface import check_device  # noqa: F401 (re-exported)
from ..network.registry import load_runner, missing_weights  # noqa: F401 (re-exported)
from ..options import ReconstructOptions, to_dict, validate  # noqa: F401 (ReconstructOptions re-exported)
from .limits import MIN_WINDOW
from .timeline import open_clips, plan_timeline, sample
from .video import check_offset_seconds
from .windows import WindowMerger, WindowSource


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
    notes: list = dataclasses.field(default_factory=list)         # one line each, for the user
    sync: dict = dataclasses.field(default_factory=dict)          # the sync stage's record


def check_window(requested):
    if requested is not None and int(requested) < MIN_WINDOW:
        raise ChrommError(f"--window {requested}: a window needs at least {MIN_WINDOW} timesteps")


def choose_window(runner, image_hw, num_views, count, requested=None):
    """Timesteps per window: the requested size, else what fits the runner's device; at most `count`."""
    check_window(requested)
    if requested is not None:
        size = int(requested)
    else:
        size = int(runner.window_size(tuple(image_hw), num_views))
    return max(MIN_WINDOW, min(size, count))


def frame_size(clips):
    """(height, width) that holds every clip's frames."""
    return max(c.height for c in clips), max(c.width for c in clips)


def _is_out_of_memory(exc):
    if isinstance(exc, MemoryError):
        return True
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _free_device_memory():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class WindowedReconstruction:
    """One machine: windows from a WindowSource through the runner into a WindowMerger, in order;
    an out-of-memory window is retried at half the size."""

    def __init__(self, runner, clips, fps, size, progress, total, stats, rig=None):
        self.runner, self.fps = runner, fps
        self.known = {"cameras": rig.cameras} if rig is not None else {}
        self.names = [c.name for c in clips]
        self.clips, self.size = clips, size
        self.merger = WindowMerger(fps, self.names)
        self.progress, self.total, self.stats = progress, total, stats

    def run(self, samples):
        source = WindowSource(self.clips, samples, self.size)
        stats = self.stats
        stats.window_size, stats.overlap, stats.buffer_frames = source.size, source.overlap, \
            source.buffer.frames_held
        try:
            while True:
                t0 = time.perf_counter()
                window = source.next_window()
                stats.seconds["decode"] = stats.seconds.get("decode", 0.0) + time.perf_counter() - t0
                if window is None:
                    break
                start, frames = window
                t0 = time.perf_counter()
                try:
                    views = self.runner.run_window(frames, self.names, self.fps, **self.known)
                except Exception as exc:
                    if not _is_out_of_memory(exc):
                        raise
                    self._shrink(source, exc)
                    continue
                del frames, window
                _add_seconds(stats, "network", t0)
                stats.window_calls.append(views.num_frames)
                t0 = time.perf_counter()
                self.merger.add(views, start)
                _add_seconds(stats, "merge", t0)
                del views
                self.progress("network", self.merger.committed, max(self.total, self.merger.committed))
        finally:
            source.close()
        stats.timesteps = source.timesteps
        return self.merger.views()

    def _shrink(self, source, exc):
        _free_device_memory()
        smaller = source.size // 2
        if smaller < MIN_WINDOW or not source.shrink(smaller):
            raise ChrommError(f"out of {'GPU ' if 'cuda' in str(self.runner.device) else ''}memory "
                              f"even with a window of {source.size} timesteps ({exc}); use fewer or "
                              "smaller clips, or --device cpu") from None
        self.stats.window_size = smaller


def _add_seconds(stats, stage, t0):
    stats.seconds[stage] = stats.seconds.get(stage, 0.0) + time.perf_counter() - t0


def open_take(options, stats=None, progress=None):
    """Open the clips of `options`, plan their common timeline and match the known cameras:
    (clips, offsets, timeline, KnownRig or None). With `stats`, the clips' notes go there and
    the audio part of the sync stage runs first (its record in `stats.sync`)."""
    from .known_cameras import prepare

    clips, offsets = open_clips(options.clips, options.offsets, options.image_fps)
    if stats is not None:
        stats.notes.extend(note for clip in clips for note in getattr(clip, "notes", ()))
        offsets, stats.sync = audio_stage(options, clips, offsets, progress or (lambda *a: None), stats)
    timeline = plan_timeline(clips, offsets, options.fps, options.start, options.end)
    return clips, offsets, timeline, prepare(options.cameras, clips)


def undistorted(samples, rig, stats=None):
    """The sampled timesteps with known lenses undistorted (as they are, without any)."""
    from .undistort import undistort_frames

    undistorters = rig.undistorters if rig is not None else []
    if not any(undistorters):
        yield from samples
        return
    try:
        for k, frames in samples:
            t0 = time.perf_counter()
            frames = undistort_frames(frames, undistorters)
            if stats is not None:
                _add_seconds(stats, "undistort", t0)
            yield k, frames
            del frames
    finally:
        samples.close()  # the decoder threads end with the windows


def reconstruct_views(options, runner=None, progress=None, cancel=None, stats=None):
    """Decode, sample and run the network in windows; returns (Views, Stats)."""
    progress = progress or (lambda *a: None)
    stats = stats or Stats()
    check = _cancel_check(cancel)
    validate(options)
    check_window(options.window)
    progress("open", 0, len(options.clips))
    t0 = time.perf_counter()
    from .known_cameras import apply_to_views

    clips, offsets, timeline, rig = open_take(options, stats, progress)
    if rig is not None:
        stats.notes.extend(rig.notes)
    stats.seconds["open"] = time.perf_counter() - t0
    progress("open", len(clips), len(clips))
    check()
    runner = runner or load_runner(options)
    size = choose_window(runner, frame_size(clips), len(clips), timeline.count, options.window)
    work = WindowedReconstruction(runner, clips, timeline.fps, size, progress, timeline.count, stats, rig)
    progress("network", 0, timeline.count)
    views = work.run(undistorted(sample(clips, offsets, timeline, cancel=check), rig, stats))
    check()
    views = apply_to_views(views, rig)
    describe_take(views, offsets, timeline.start, [c.path for c in clips])
    if stats.notes:
        views.meta["notes"] = list(stats.notes)
    stats.windows = len(stats.window_calls)
    stats.detections = int(views.num_detections)
    return views, stats


def audio_stage(options, clips, offsets, progress, stats):
    """The audio part of the sync stage: returns (offsets in seconds, sync record for the take).

    Typed offsets stay fixed unless `options.resync`. auto: audio when every clip has audio and
    every offset is confident, motion (in fuse) otherwise; audio: the same, saying so when it
    falls back; motion and none: nothing here."""
    method = options.fuse.sync
    record = {"requested": method, "audio": None}
    if options.offsets and not options.resync:
        record["method"] = "typed"
        return offsets, record
    if method in ("motion", "none"):
        record["method"] = method
        return offsets, record
    from .audio_sync import sync_audio, usable

    progress("sync", 0, 1)
    t0 = time.perf_counter()
    videos = [i for i, c in enumerate(clips) if c.kind == "video"]
    result = sync_audio([clips[i].path for i in videos],
                        sources=[getattr(clips[i], "source", None) for i in videos]) if videos else None
    stats.seconds["sync"] = time.perf_counter() - t0
    progress("sync", 1, 1)
    if result is not None:
        record["audio"] = {"offsets_s": [None] * len(clips), "confidence": [None] * len(clips),
                           "notes": list(result.notes)}
        for i, o, c in zip(videos, result.offsets, result.confidence):
            record["audio"]["offsets_s"][i], record["audio"]["confidence"][i] = o, c
    if result is not None and len(videos) == len(clips) and usable(result):
        record["method"] = "audio"
        return [check_offset_seconds(o, c) for o, c in zip(result.offsets, clips)], record
    why = "; ".join(result.notes) if result is not None and result.notes else "not every clip has audio"
    stats.notes.append(f"audio sync not usable ({why}); synchronising by motion instead")
    record["method"] = "motion"
    return offsets, record


def describe_take(views, offsets, start, clip_paths):
    """Record where the merged views come from (offsets and start in seconds, clip names) in their meta."""
    views.meta["offsets_s"] = [float(o) for o in offsets]
    views.meta["start_s"] = float(start)
    views.meta["clips"] = [os.path.basename(p) for p in clip_paths]
    return views


def fuse(views, smplx_path=None, options=None):
    """The test-time modules with `options` (a FuseOptions)."""
    from ..body.model_file import configured_model
    from ..fusion.pipeline import fuse_views

    return fuse_views(views, smplx_model=configured_model(smplx_path), options=options)


def _fuse_options(options, record):
    """fuse runs motion sync after audio (as a check) and for motion; not for typed offsets or none."""
    return dataclasses.replace(options.fuse, sync="motion" if record.get("method") in ("audio", "motion")
                               else "none")


def finish_sync(take, views, record, paths):
    """Offsets actually used (audio or typed, plus motion's shifts) into meta.sources / meta.sync;
    `paths` what to record as each view's clip."""
    fps = views.fps
    offsets = list(views.meta["offsets_s"])
    start = float(views.meta["start_s"])
    motion = take.meta.get("sync", {})
    if motion.get("applied"):
        offsets = [o + d for o, d in zip(offsets, motion["offsets_s"])]
        start += motion.get("start_frame", 0) / fps
        if record.get("method") == "audio":
            record["method"] = "audio+motion"
    record = dict(record, offsets_s=[float(o) for o in offsets], start_s=start,
                  motion=motion if motion.get("method") == "motion" else None)
    take.meta["sync"] = record
    take.meta["sources"] = [{"path": str(path), "start_time": start + offset, "offset_s": offset}
                            for path, offset in zip(paths, offsets)]
    return take


def build_blend(take_path, blend_path, smplx_path=None):
    """Build the .blend in a child process (the backend process never imports bpy)."""
    _run_command(["build", take_path, "-o", blend_path] + (["--smplx", smplx_path] if smplx_path else []),
                 f"{blend_path}: building the .blend failed")


def render_overlay(take_path, video_path, view=0, smplx_path=None):
    """The take's people over view `view`'s clip (video + PNG still beside it), in a child process."""
    still = os.path.splitext(video_path)[0] + ".png"
    _run_command(["render", take_path, "--view", str(view), "-o", video_path, "--still", still] +
                 (["--smplx", smplx_path] if smplx_path else []), f"{video_path}: rendering the overlay failed")
    return still


def _run_command(args, failure):
    """`python -m chromm_addon ARGS` in a child process; its last error line in a ChrommError."""
    cmd = [sys.executable, "-m", "chromm_addon"] + list(args) + ["--exit-on-stdin-eof"]
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
    # The child's stdin is a pipe whose write end only this process holds (never written to): if
    # this process dies, even by kill -9, the child sees end of file and stops. On SIGTERM or
    # Ctrl-C here, subprocess.run kills it.
    read_end, write_end = os.pipe()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=read_end)
    finally:
        os.close(read_end)
        os.close(write_end)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        message = lines[-1] if lines else f"exit status {done.returncode}"
        raise ChrommError(f"{failure}: {message.removeprefix('error: ')}")


def check_targets(*paths):
    """The output files (None for one not asked for): different paths in existing folders."""
    targets = [p for p in paths if p]
    if len(set(map(os.path.abspath, targets))) != len(targets):
        raise ChrommError("the output files must be different paths")
    for path in targets:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ChrommError(f"{path}: the output folder does not exist")
    return targets


def reconstruct(options, take_out, views_out=None, blend_out=None, runner=None, progress=None,
                cancel=None, sources=None):
    """The whole pipeline; writes take_out (and views_out, blend_out) or nothing. Returns Stats.

    `sources`: what to record as each view's clip in the take (default: the clips' absolute
    paths); the service gives what the client submitted (an upload's own file name)."""
    check_targets(take_out, views_out, blend_out)
    views, stats = reconstruct_views(options, runner=runner, progress=progress, cancel=cancel)
    _cancel_check(cancel)()
    write_outputs(views, options, take_out, views_out, blend_out, progress=progress, cancel=cancel,
                  stats=stats, sources=sources)
    return stats


def write_outputs(views, options, take_out, views_out=None, blend_out=None, progress=None, cancel=None,
                  stats=None, overlay_out=None, overlay_view=0, sources=None):
    """Merged views -> fused take; writes take_out (and views_out, blend_out, the overlay video
    overlay_out of view `overlay_view` with its PNG still) all or nothing. `sources` as in
    `reconstruct`."""
    progress = progress or (lambda *a: None)
    check = _cancel_check(cancel)
    stats = stats or Stats()
    still_out = os.path.splitext(overlay_out)[0] + ".png" if overlay_out else None
    targets = check_targets(take_out, views_out, blend_out, overlay_out, still_out)
    progress("fuse", 0, 1)
    t0 = time.perf_counter()
    if not stats.sync:  # views merged elsewhere (batch): no audio stage ran
        typed = options.offsets and not options.resync
        stats.sync = {"requested": options.fuse.sync, "audio": None,
                      "method": "typed" if typed else "none" if options.fuse.sync == "none" else "motion"}
    take = fuse(views, options.smplx, _fuse_options(options, stats.sync))
    recorded = to_dict(options)
    recorded["clips"] = [str(path) for path in (sources or options.clips)]  # never a service's own paths
    take.meta["options"] = recorded
    if views.meta.get("known_cameras"):
        take.meta["known_cameras"] = views.meta["known_cameras"]
    # Where each view's clip is and its time at timestep 0 (for the cameras' backgrounds), and the
    # offsets the sync stage found.
    sources = sources or [os.path.abspath(str(path)) for path in options.clips]
    stats.sync = finish_sync(take, views, stats.sync, sources).meta["sync"]
    stats.notes.extend(take.meta["sync"]["motion"]["notes"] if take.meta["sync"].get("motion") else ())
    if stats.notes:
        take.meta["notes"] = list(stats.notes)
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
        if overlay_out:
            progress("render", 0, 1)
            t0 = time.perf_counter()
            render_overlay(staged[take_out], staged[overlay_out], overlay_view, options.smplx)
            stats.seconds["render"] = time.perf_counter() - t0
            progress("render", 1, 1)
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
        try:
            for original, target in zip(self._originals, self.targets):
                folder = os.path.dirname(target)
                if folder not in self.folders:
                    # Named and recorded before it exists, so an interrupt at any point leaves
                    # nothing that the clean-up below does not know about.
                    self.folders[folder] = os.path.join(folder, f".chromm-stage-{uuid.uuid4().hex[:12]}")
                    os.mkdir(self.folders[folder], 0o700)
                staged[original] = os.path.join(self.folders[folder], os.path.basename(target))
        except BaseException:
            self._remove()
            raise
        self.staged = staged
        return staged

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                for original, target in zip(self._originals, self.targets):
                    os.replace(self.staged[original], target)
        finally:
            self._remove()
        return False

    def _remove(self):
        for folder in self.folders.values():
            shutil.rmtree(folder, ignore_errors=True)


def _cancel_check(cancel):
    if cancel is None:
        return lambda: None
    if callable(cancel) and not hasattr(cancel, "is_set"):
        return cancel

    def check():
        if cancel.is_set():
            raise Cancelled()

    return check
