"""Progress of a reconstruction: stage, units done, overall fraction, ETA; and a terminal bar.

The pipeline calls a `Progress` with (stage, done, total); the command line draws it on stderr,
the service copies it into the job's status.
"""

import collections
import sys
import threading
import time

# Share of the whole run each stage takes (roughly measured; only for the overall fraction).
STAGES = {"open": 0.02, "network": 0.80, "fuse": 0.10, "write": 0.03, "build": 0.05}
UNITS = {"windows": "windows", "open": "clips", "network": "timesteps", "fuse": "steps", "write": "files",
         "build": "files", "render": "frames"}


class Progress:
    """Thread-safe progress record; `snapshot()` gives a dict for the API."""

    def __init__(self, stages=None, clock=time.monotonic):
        self.stages = dict(STAGES if stages is None else stages)
        self._clock = clock
        self._lock = threading.Lock()
        self.stage, self.done, self.total = "queued", 0, 0
        self._stage_started = None
        self._done_at_stage_start = 0

    def __call__(self, stage, done, total):
        with self._lock:
            if stage != self.stage:
                self.stage = stage
                self._stage_started = self._clock()
                self._done_at_stage_start = done
            self.done, self.total = int(done), int(total)

    def fraction(self):
        with self._lock:
            return self._fraction()

    def _fraction(self):
        if self.stage not in self.stages:
            return 1.0 if self.stage == "done" else 0.0
        names = list(self.stages)
        before = sum(self.stages[n] for n in names[:names.index(self.stage)])
        part = self.done / self.total if self.total else 0.0
        span = sum(self.stages.values())
        return min(1.0, (before + self.stages[self.stage] * min(part, 1.0)) / span)

    def eta_seconds(self):
        """Seconds left in the current stage from its rate so far; None until there is a rate."""
        with self._lock:
            return self._eta()

    def _eta(self):
        if self._stage_started is None or not self.total:
            return None
        advanced = self.done - self._done_at_stage_start
        if advanced <= 0:
            return None
        elapsed = self._clock() - self._stage_started
        return max(0.0, elapsed / advanced * (self.total - self.done))

    def snapshot(self):
        with self._lock:
            eta = self._eta()
            return {"stage": self.stage, "done": self.done, "total": self.total,
                    "fraction": round(self._fraction(), 4),
                    "eta_s": None if eta is None else round(eta, 1)}


def format_eta(seconds):
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class TerminalBar(Progress):
    """A one-line bar on stderr: `[network] ######----  120/300 timesteps  40%  ETA 00:35`.

    On a terminal the line is redrawn in place; otherwise one line per stage change and per 10 %.
    """

    def __init__(self, stream=None, width=24, **kwargs):
        super().__init__(**kwargs)
        self.stream = stream or sys.stderr
        self.width = width
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_line = ""
        self._last_decile = None
        self._last_draw = 0.0

    def __call__(self, stage, done, total):
        new_stage = stage != self.stage
        super().__call__(stage, done, total)
        part = done / total if total else 0.0
        decile = (stage, int(part * 10))
        now = self._clock()
        if self._tty:
            if new_stage or done >= total or now - self._last_draw > 0.1:
                self._draw("\r", new_stage)
        elif new_stage or decile != self._last_decile:
            self._draw("", False)
        self._last_decile = decile

    def _draw(self, prefix, newline_before):
        snap = self.snapshot()
        part = snap["done"] / snap["total"] if snap["total"] else 0.0
        filled = int(round(part * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        unit = UNITS.get(snap["stage"], "")
        line = (f"[{snap['stage']:>7}] {bar} {snap['done']:>5}/{snap['total']:<5} {unit:<9} "
                f"{part * 100:3.0f}%  ETA {format_eta(snap['eta_s'])}{self.note()}")
        if self._tty:
            if newline_before and self._last_line:
                self.stream.write("\n")
            self.stream.write(prefix + line.ljust(len(self._last_line)))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last_line = line
        self._last_draw = self._clock()

    def note(self):
        """Text after the bar (subclasses)."""
        return ""

    def finish(self):
        if self._tty and self._last_line:
            self.stream.write("\n")
            self.stream.flush()


class BatchBar(TerminalBar):
    """The batch's bar over all windows of all takes, with takes finished and time left.

    Until a take is opened its window count is guessed as the mean of the takes opened so far.
    """

    def __init__(self, num_takes, **kwargs):
        super().__init__(stages={"windows": 1.0}, **kwargs)
        self.num_takes = int(num_takes)
        self._planned, self._done_windows, self._finished = {}, 0, collections.Counter()
        self._events_lock = threading.Lock()

    def __call__(self, kind, **info):
        with self._events_lock:
            if kind == "take_planned":
                self._planned[info["take"]] = info["windows"]
            elif kind == "window_done":
                self._done_windows += 1
            elif kind == "take_finished":
                self._finished[info["status"]] += 1
                if info["status"] != "done":  # skipped or failed: its windows count as done
                    self._planned.setdefault(info["take"], 0)
            else:
                return
            mean = sum(self._planned.values()) / len(self._planned) if self._planned else 1.0
            unplanned = max(0, self.num_takes - len(self._planned))
            total = max(self._done_windows, int(round(sum(self._planned.values()) + mean * unplanned)))
            super().__call__("windows", self._done_windows, total)
            if kind == "take_finished" and not self._tty:
                self._draw("", False)

    def note(self):
        f = self._finished
        failed = f"  {f['failed']} failed" if f["failed"] else ""
        return f"  takes {f['done'] + f['skipped'] + f['failed']}/{self.num_takes}{failed}"
