"""The common timeline of several clips, and sampling every clip on it by timestamp.

Offsets: a clip's offset is the time *in that clip* that lines up with the common zero (for a
clap at 2.3 s in clip A and 1.5 s in clip B, give `2.3s 1.5s`). Common time = clip time - offset.
The timeline covers the time all clips have frames for, optionally cut to [start, end], at the
target frame rate. At timestep k (common time start + k / fps) each clip gives the decoded frame
whose timestamp is nearest; clips are decoded front to back at once, holding two frames each.
"""

import dataclasses
import math
import queue
import threading

from ..errors import ChrommError
from .limits import MAX_CLIPS, MAX_TIMESTEPS
from .video import check_fps, check_offset_seconds, open_clip, parse_offset


PREFETCH = 4  # frames decoded ahead per clip


@dataclasses.dataclass
class Timeline:
    start: float      # common time of timestep 0, seconds
    fps: float
    count: int        # planned timesteps (from the clips' headers; decoding may end sooner)

    def time(self, k):
        return self.start + k / self.fps


def open_clips(paths, offsets=None, image_fps=None):
    """Open every clip; returns (clips, offsets in seconds)."""
    paths = list(paths)
    if not paths:
        raise ChrommError("no clips given")
    if len(paths) > MAX_CLIPS:
        raise ChrommError(f"{len(paths)} clips given; at most {MAX_CLIPS} views per take")
    offsets = list(offsets or [])
    if offsets and len(offsets) != len(paths):
        raise ChrommError(f"{len(offsets)} offsets given for {len(paths)} clips (give one per clip, or none)")
    if image_fps is not None:
        image_fps = check_fps(image_fps, "assumed image-folder frame rate")
    parsed = [parse_offset(o) for o in offsets] or [parse_offset("0s")] * len(paths)
    clips = [open_clip(p, image_fps=image_fps) for p in paths]
    seconds = [check_offset_seconds(o.seconds(c.fps), c) for o, c in zip(parsed, clips)]
    names = [c.name for c in clips]
    for i, name in enumerate(names):  # view names must be unique: suffix repeats
        if names.count(name) > 1:
            names[i] = f"{name}_{i}"
    for clip, name in zip(clips, names):
        clip.name = name
    return clips, seconds


def plan_timeline(clips, offsets, fps=None, start=None, end=None):
    """The timesteps all clips cover, at `fps` (default: the slowest clip's rate)."""
    fps = check_fps(fps, "target frame rate") if fps is not None else min(c.fps for c in clips)
    spans = [(c.first_time - o, c.last_time - o) for c, o in zip(clips, offsets)]
    lo, hi = max(s for s, _ in spans), min(e for _, e in spans)
    if hi < lo:
        cover = "; ".join(f"{c.path} covers {s:.3f}..{e:.3f} s" for c, (s, e) in zip(clips, spans))
        raise ChrommError(f"the clips do not overlap in time after their offsets ({cover})")
    if start is not None:
        start = _seconds(start, "start")
        if start > hi:
            raise ChrommError(f"--start {start:g} s is after the clips' common end ({hi:.3f} s)")
        lo = max(lo, start)
    if end is not None:
        end = _seconds(end, "end")
        if end < lo:
            raise ChrommError(f"--end {end:g} s is before the start of the common time ({lo:.3f} s)")
        hi = min(hi, end)
    count = int(math.floor((hi - lo) * fps + 1e-6)) + 1
    if count > MAX_TIMESTEPS:
        raise ChrommError(f"the take would have {count} timesteps at {fps:g} fps; at most "
                          f"{MAX_TIMESTEPS} (use --start/--end or a lower --fps)")
    return Timeline(start=lo, fps=fps, count=count)


def _seconds(value, what):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ChrommError(f"--{what} {value!r} is not a time in seconds") from None
    if not math.isfinite(value):
        raise ChrommError(f"--{what} {value!r} is not a time in seconds")
    return value


class _Prefetch:
    """Decodes a clip in its own thread, at most `depth` frames ahead (OpenCV releases the GIL
    while decoding, so clips decode in parallel and overlap the network's work)."""

    def __init__(self, clip, depth):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(clip,), name=f"decode {clip.name}", daemon=True)
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, clip):
        frames = clip.frames()
        try:
            for frame in frames:
                if not self._put(("frame", frame)):
                    return
            self._put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            self._put(("error", exc))
        finally:
            frames.close()

    def __iter__(self):
        return self

    def __next__(self):
        kind, value = self._queue.get()
        if kind == "frame":
            return value
        self._queue.put((kind, value))  # keep answering the same way
        if kind == "error":
            raise value
        raise StopIteration

    def close(self):
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)


class _ClipCursor:
    """Walks one clip's frames forward, keeping the frame before and after the target time."""

    def __init__(self, clip, offset, prefetch=0):
        self.clip, self.offset = clip, offset
        self._frames = _Prefetch(clip, prefetch) if prefetch > 0 else clip.frames()
        self.before = None
        self.after = self._next()
        self.decoded = 0

    def _next(self):
        frame = next(self._frames, None)
        if frame is not None:
            frame.time -= self.offset
        return frame

    def frame_at(self, t):
        """The RGB frame nearest to common time t, or None once the clip has ended before t."""
        while self.after is not None and self.after.time <= t:
            self.before, self.after = self.after, self._next()
            self.decoded += 1
        candidates = [f for f in (self.before, self.after) if f is not None]
        if not candidates:
            return None
        best = min(candidates, key=lambda f: abs(f.time - t))
        if self.after is None and t - best.time > 1.0 / self.clip.fps:
            return None  # past the last frame by more than a frame interval
        return best.load()

    def close(self):
        self._frames.close()


def sample(clips, offsets, timeline, cancel=None, prefetch=PREFETCH):
    """Yield (k, [RGB frame per clip]) for each timestep, decoding every clip once, in order.

    With `prefetch` > 0 each clip decodes in its own thread, that many frames ahead. Stops
    early, without error, when a clip's frames end before its header said; raises when no
    timestep at all could be sampled.
    """
    cursors = [_ClipCursor(c, o, prefetch) for c, o in zip(clips, offsets)]
    try:
        for k in range(timeline.count):
            if cancel is not None:
                cancel()
            t = timeline.time(k)
            frames = [cur.frame_at(t) for cur in cursors]
            if any(f is None for f in frames):
                if k == 0:
                    gone = [c.path for c, f in zip(clips, frames) if f is None]
                    raise ChrommError(f"{gone[0]}: no frame at the start of the common time "
                                      f"({t:.3f} s); the clip has fewer frames than its header says")
                return
            yield k, frames
            del frames  # hold no frame of a timestep already handed out
    finally:
        for cur in cursors:
            cur.close()
