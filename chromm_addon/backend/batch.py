"""Batches of takes: the manifest, one driver per take, `batch.json`; in this process or on Ray.

A take runs in four steps whichever executor runs them (the same code with and without Ray):

1. a `TakeReader` opens the clips, plans the timeline and cuts it into windows of frames
   (`windows.WindowSource`), one window per call, in take order;
2. a `WindowWorker` (one per GPU, the network loaded once) turns each window into a Views object;
   the windows of one take go to whichever worker is free, in any order;
3. the driver aligns and merges the windows' outputs in take order (`windows.WindowMerger`; it
   needs only the outputs, never frames);
4. `finish_take` fuses the merged views and writes take.npz, views.npz (and take.blend) into the
   take's folder, all or nothing (`pipeline.write_outputs`).

`LocalExecutor` runs these in this process, one take after another; `cluster.RayExecutor` runs
readers and `finish_take` as CPU actors and tasks and the workers as GPU actors. The driver
keeps at most `max_in_flight` windows decoded and not yet through the network (the bound on
frames in the object store: max_in_flight x window x views frames).
"""

import collections
import dataclasses
import hashlib
import json
import os
import re
import shutil
import threading
import time

from ..errors import ChrommError

PENDING, RUNNING, DONE, FAILED, SKIPPED = "pending", "running", "done", "failed", "skipped"
BATCH_FILE = "batch.json"
OUTPUTS = ("take.npz", "views.npz")
BLEND = "take.blend"
OVERLAY = ("overlay.mp4", "overlay.png")
# Keys of a take besides the options schema's job options (options.ReconstructOptions, scope "job":
# fps, start, end, window, image_fps, offsets and the nested "fuse" table).
TAKE_KEYS = {
    "name": "take name: letters, digits, '.', '_', '-' (its output folder)",
    "clips": "clip paths every node can read (video files or folders of images), one per view",
    "blend": "also build OUT_DIR/<take>/take.blend (true/false; needs bpy where fusion runs)",
    "overlay": "also render OUT_DIR/<take>/overlay.mp4 (+ overlay.png): the people over this view's "
               "clip (a view index; needs bpy where fusion runs)",
}
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


@dataclasses.dataclass
class TakeSpec:
    name: str
    options: object        # pipeline.ReconstructOptions
    blend: bool = False
    fingerprint: str = ""  # of the settings and the clips' sizes and times: a change redoes the take
    overlay: int = None    # view index of the overlay render, or None
    sources: list = None   # what the take records as each view's clip (default: the clips' paths)

    def outputs(self, folder):
        names = OUTPUTS + ((BLEND,) if self.blend else ()) + (OVERLAY if self.overlay is not None else ())
        return [os.path.join(folder, n) for n in names]


# -- manifest ----------------------------------------------------------------------------------
def read_manifest(path, runner_options=None):
    """TOML (.toml) or JSON manifest -> [TakeSpec]; every problem is one ChrommError line."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ChrommError(f"{path}: cannot read the manifest ({exc.strerror})") from None
    try:
        if path.lower().endswith(".json"):
            data = json.loads(raw.decode("utf-8"))
        else:
            import tomllib

            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.lower().endswith(".json") else "TOML"
        raise ChrommError(f"{path}: not valid {kind} ({str(exc).splitlines()[0]})") from None
    return parse_manifest(data, path, runner_options)


def parse_manifest(data, path="<manifest>", runner_options=None):
    """[TakeSpec] from the manifest's dict; `runner_options` (a ReconstructOptions) gives the
    batch-wide service options (network, device, weights, smplx, seed)."""
    if not isinstance(data, dict):
        raise ChrommError(f"{path}: expected a table with 'takes' (and optional 'defaults')")
    unknown = sorted(set(data) - {"defaults", "takes"})
    if unknown:
        raise ChrommError(f"{path}: unknown key {unknown[0]!r} (expected 'defaults' and 'takes')")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ChrommError(f"{path}: 'defaults' must be a table")
    for key in ("name", "clips"):
        if key in defaults:
            raise ChrommError(f"{path}: defaults: {key!r} belongs to each take, not to the defaults")
    _check_keys(defaults, f"{path}: defaults")
    takes = data.get("takes")
    if not isinstance(takes, list) or not takes:
        raise ChrommError(f"{path}: no takes (add [[takes]] tables with a name and clips)")
    specs, seen = [], set()
    base = os.path.dirname(os.path.abspath(path)) if os.path.exists(path) else os.getcwd()
    for i, entry in enumerate(takes):
        where = f"{path}: takes[{i}]"
        if not isinstance(entry, dict):
            raise ChrommError(f"{where}: expected a table with a name and clips")
        _check_keys(entry, where)
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ChrommError(f"{where}: name {name!r} must be 1-128 letters, digits, '.', '_' or '-' "
                              "(it names the output folder)")
        where = f"{path}: take {name!r}"
        if name in seen:
            raise ChrommError(f"{where}: duplicate take name")
        seen.add(name)
        specs.append(_take_spec(name, _deep_merge(defaults, entry), where, base, runner_options))
    return specs


def job_option_names():
    """The options schema's top-level job options (what a take or [defaults] may set)."""
    from ..options import JOB, ReconstructOptions

    return {f.name for f in dataclasses.fields(ReconstructOptions) if f.metadata.get("scope", JOB) == JOB}


def _check_keys(table, where):
    allowed = set(TAKE_KEYS) | job_option_names()
    for key in table:
        if key not in allowed:
            raise ChrommError(f"{where}: unknown key {key!r} (expected {', '.join(sorted(allowed))})")


def _deep_merge(defaults, entry):
    out = dict(defaults)
    for key, value in entry.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


def _take_spec(name, entry, where, base, runner_options):
    import copy

    from ..options import ReconstructOptions, from_dict, to_dict
    from .pipeline import check_window
    from .video import parse_offset

    clips = entry.pop("clips", None)
    if not isinstance(clips, list) or not clips or not all(isinstance(c, str) for c in clips):
        raise ChrommError(f"{where}: clips must be a list of paths")
    resolved = []
    for clip in clips:
        full = os.path.join(base, os.path.expanduser(clip))  # absolute paths stay as they are
        if not os.path.exists(full):
            raise ChrommError(f"{full}: no such file or folder (take {name!r})")
        resolved.append(os.path.normpath(full))
    blend = entry.pop("blend", False)
    if not isinstance(blend, bool):
        raise ChrommError(f"{where}: blend must be true or false")
    overlay = entry.pop("overlay", None)
    if overlay is not None and (isinstance(overlay, bool) or not isinstance(overlay, int)
                                or not 0 <= overlay < len(clips)):
        raise ChrommError(f"{where}: overlay must be a view index, 0..{len(clips) - 1}")
    entry.pop("name")
    cameras = entry.get("cameras")
    camera_files = []
    if isinstance(cameras, (str, list)):  # camera files (docs/cameras.md), relative to the manifest
        paths = [cameras] if isinstance(cameras, str) else cameras
        if not all(isinstance(p, str) for p in paths):
            raise ChrommError(f"{where}: cameras must be a camera document, a file or a list of files")
        camera_files = [os.path.normpath(os.path.join(base, os.path.expanduser(p))) for p in paths]
        for path in camera_files:
            if not os.path.isfile(path):
                raise ChrommError(f"{path}: no such file (take {name!r} cameras)")
        entry["cameras"] = camera_files[0] if isinstance(cameras, str) else camera_files
    template = copy.deepcopy(runner_options) if runner_options is not None else ReconstructOptions()
    options = from_dict(ReconstructOptions, entry, where, base=template)
    options.clips = resolved
    if options.offsets is not None:
        if len(options.offsets) != len(clips):
            raise ChrommError(f"{where}: offsets must be a list with one per clip ({len(clips)})")
        try:
            [parse_offset(o) for o in options.offsets]
        except ChrommError as exc:
            raise ChrommError(f"{where}: {exc}") from None
    check_window(options.window)
    settings = {"options": to_dict(options), "blend": blend, "overlay": overlay,
                "clip_files": [_file_stamp(c) for c in resolved + camera_files]}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return TakeSpec(name=name, options=options, blend=blend, fingerprint=digest, overlay=overlay)


def _file_stamp(path):
    """Size and modification time of a clip (of every file of an image folder)."""
    if os.path.isdir(path):
        return sorted(_file_stamp(os.path.join(path, n)) for n in os.listdir(path))
    st = os.stat(path)
    return [os.path.basename(path), st.st_size, int(st.st_mtime_ns)]


def check_output_folder(out_dir):
    """Create OUT_DIR if needed and prove it writable, before anything runs."""
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise ChrommError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
    if not os.path.isdir(out_dir):
        raise ChrommError(f"{out_dir}: not a folder")
    probe = os.path.join(out_dir, f".chromm-probe-{os.getpid()}")
    try:
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise ChrommError(f"{out_dir}: the output folder is not writable ({exc.strerror})") from None
    return out_dir


# -- the steps (run in this process or inside Ray actors and tasks) ----------------------------
class TakeReader:
    """Step 1: opens a take's clips and hands out its windows of frames one by one, in order."""

    def __init__(self, options):
        self.options = options
        self.source = None
        self._index = -1

    def open(self):
        from .pipeline import check_window, frame_size, open_take

        check_window(self.options.window)
        t0 = time.perf_counter()
        self.clips, self.offsets, self.timeline, self.rig = open_take(self.options)
        return {"count": self.timeline.count, "fps": self.timeline.fps,
                "names": [c.name for c in self.clips], "image_hw": frame_size(self.clips),
                "offsets": [float(o) for o in self.offsets], "start": float(self.timeline.start),
                "clips": [c.path for c in self.clips],
                "rig": None if self.rig is None else RigSummary(self.rig),
                "seconds": time.perf_counter() - t0}

    def start(self, size):
        from .pipeline import undistorted
        from .timeline import sample
        from .windows import WindowSource

        samples = undistorted(sample(self.clips, self.offsets, self.timeline), self.rig)
        self.source = WindowSource(self.clips, samples, size)
        return self.source.buffer.frames_held

    def next_window(self):
        """(index, start, [frames per view], decode seconds), or None after the last window."""
        t0 = time.perf_counter()
        window = self.source.next_window()
        if window is None:
            self.source.close()
            return None
        start, frames = window
        self._index += 1
        # Copies: the buffer is reused for the next window while this one is in flight.
        return self._index, start, [f.copy() for f in frames], time.perf_counter() - t0

    def close(self):
        if self.source is not None:
            self.source.close()
        return True


class RigSummary:
    """What the workers and the driver need of the reader's known cameras (backend.known_cameras
    KnownRig): the cameras and the meta, without the undistortion's remap tables (tens of MB per
    clip), which stay with the reader that undistorts the frames."""

    def __init__(self, rig):
        self.cameras, self.notes = rig.cameras, list(rig.notes)
        self.any_pose = rig.any_pose
        self._meta = rig.meta()

    def meta(self):
        return dict(self._meta)


class WindowWorker:
    """Step 2: the network on one device, loaded once; turns windows into Views objects."""

    def __init__(self, runner_options, runner=None):
        from .pipeline import load_runner

        self.runner = runner or load_runner(runner_options)
        self.windows = 0

    def window_size(self, image_hw, num_views, count, requested=None):
        from .pipeline import choose_window

        return choose_window(self.runner, image_hw, num_views, count, requested)

    def run(self, window, view_names, fps, cameras=None):
        """(index, start, Views, {"network": s, "decode": s}) for a window from `TakeReader.next_window`."""
        if window is None:
            return None
        index, start, frames, decode_s = window
        t0 = time.perf_counter()
        known = {"cameras": cameras} if cameras is not None else {}
        views = self.runner.run_window(frames, view_names, fps, **known)
        self.windows += 1
        return index, start, views, {"network": time.perf_counter() - t0, "decode": decode_s}

    def ping(self):
        """Windows served by this process, and whether Ray restarted this worker."""
        restarted = False
        try:
            import ray

            if ray.is_initialized():
                restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        except (ImportError, RuntimeError):
            pass
        return {"windows": self.windows, "restarted": restarted}


def finish_take(views, options, folder, blend=False, overlay=None, sources=None):
    """Step 4: fuse and write the take's outputs into `folder`, all or nothing; seconds per stage."""
    from .pipeline import Stats, write_outputs

    stats = Stats()
    take_out, views_out = (os.path.join(folder, n) for n in OUTPUTS)
    write_outputs(views, options, take_out, views_out, os.path.join(folder, BLEND) if blend else None,
                  stats=stats, overlay_out=os.path.join(folder, OVERLAY[0]) if overlay is not None else None,
                  overlay_view=overlay or 0, sources=sources)
    return stats.seconds


# -- executors -----------------------------------------------------------------------------------
class _Ready:
    """A result computed at once (the local executor's stand-in for a Ray object reference)."""

    __slots__ = ("value", "error")

    def __init__(self, fn, *args):
        self.value = self.error = None
        try:
            self.value = fn(*(a.get() if isinstance(a, _Ready) else a for a in args))
        except Exception as exc:  # noqa: BLE001 - re-raised by get(), as ray.get does
            self.error = exc

    def get(self):
        if self.error is not None:
            raise self.error
        return self.value


class LocalExecutor:
    """Everything in this process: one worker, one take at a time (the batch without --ray)."""

    concurrent_takes = 1
    num_workers = 1

    def __init__(self, runner_options, runner=None):
        self.runner_options = runner_options
        self._runner = runner
        self._workers = None

    @property
    def workers(self):
        """The one worker, loading the network on first use (not when every take is skipped)."""
        if self._workers is None:
            self._workers = [WindowWorker(self.runner_options, runner=self._runner)]
        return self._workers

    def reader(self, options):
        return TakeReader(options)

    def call(self, obj, method, *args):
        return _Ready(getattr(obj, method), *args)

    def finish(self, views, options, folder, blend, overlay=None, sources=None):
        return _Ready(finish_take, views, options, folder, blend, overlay, sources)

    def get(self, ref):
        return ref.get()

    def wait(self, refs):
        return refs[:1]

    def release(self, reader):
        reader.close()  # ends the decoder threads of a take that stopped early

    def describe(self):
        return "this process"

    def shutdown(self):
        pass


# -- the driver ------------------------------------------------------------------------------------
class WorkerPool:
    """Hands each window to the worker with the fewest windows in flight; bounds the windows in
    flight over the whole batch (decoded frames waiting for or inside the network)."""

    def __init__(self, num_workers, max_in_flight):
        self.num_workers = int(num_workers)
        self.max_in_flight = int(max_in_flight)
        self._load = [0] * self.num_workers
        self._cond = threading.Condition()
        self.in_flight = self.peak = 0

    def acquire(self, block=True):
        """A worker slot, or None when the pool is full and `block` is false."""
        with self._cond:
            while self.in_flight >= self.max_in_flight:
                if not block:
                    return None
                self._cond.wait()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            i = min(range(self.num_workers), key=self._load.__getitem__)
            self._load[i] += 1
            return i

    def release(self, i):
        with self._cond:
            self._load[i] -= 1
            self.in_flight -= 1
            self._cond.notify_all()


@dataclasses.dataclass
class TakeResult:
    status: str = PENDING
    error: str = None
    windows: int = 0
    timesteps: int = 0
    detections: int = 0
    seconds: dict = dataclasses.field(default_factory=dict)


def run_take(spec, folder, executor, pool, events=None, cancel=None):
    """One take through the four steps; writes `folder`'s outputs or nothing. Returns TakeResult."""
    from .windows import WindowMerger, plan_windows

    events = events or (lambda *a, **k: None)
    check = cancel or (lambda: None)
    result = TakeResult(status=RUNNING)
    t_start = time.perf_counter()
    reader = executor.reader(spec.options)
    in_flight = {}          # result ref -> worker slot
    try:
        info = executor.get(executor.call(reader, "open"))
        result.seconds["open"] = info["seconds"]
        workers = executor.workers
        size = executor.get(executor.call(workers[0], "window_size", info["image_hw"], len(info["names"]),
                                          info["count"], spec.options.window))
        planned = len(plan_windows(info["count"], size))
        events("take_planned", take=spec.name, windows=planned, timesteps=info["count"])
        executor.get(executor.call(reader, "start", size))
        merger = WindowMerger(info["fps"], info["names"])
        rig = info["rig"]
        cameras = rig.cameras if rig is not None else None
        finished = {}       # index -> (start, views) waiting for the windows before it
        next_merge, ended, seconds = 0, False, collections.Counter()
        while not ended or in_flight:
            check()
            # Submit while the pool has room: reader -> worker, the frames never visit the driver.
            while not ended:
                slot = pool.acquire(block=not in_flight)
                if slot is None:
                    break
                window = executor.call(reader, "next_window")
                ref = executor.call(workers[slot], "run", window, info["names"], info["fps"], cameras)
                del window
                in_flight[ref] = slot
                events("window_submitted", take=spec.name, worker=slot)
            if not in_flight:
                break
            for ref in executor.wait(list(in_flight)):
                slot = in_flight.pop(ref)
                try:
                    out = executor.get(ref)
                finally:
                    pool.release(slot)
                if out is None:
                    ended = True
                    continue
                index, start, views, window_seconds = out
                seconds.update(window_seconds)
                finished[index] = (start, views)
                events("window_done", take=spec.name, worker=slot)
            t0 = time.perf_counter()
            while next_merge in finished:
                start, views = finished.pop(next_merge)
                merger.add(views, start)
                result.windows += 1
                next_merge += 1
            seconds["merge"] += time.perf_counter() - t0
        # The reader's CPU goes back before fusion asks for one: a take never holds two CPU
        # slots at once, so takes cannot deadlock each other on a small cluster.
        executor.release(reader)
        reader = None
        check()
        if merger.meta is None:
            raise ChrommError(f"{spec.options.clips[0]}: no timestep could be sampled")
        from .known_cameras import apply_to_views
        from .pipeline import describe_take

        views = apply_to_views(merger.views(), rig)
        describe_take(views, info["offsets"], info["start"], info["clips"])
        result.timesteps, result.detections = views.num_frames, int(views.num_detections)
        result.seconds.update(seconds)
        events("take_fusing", take=spec.name)
        os.makedirs(folder, exist_ok=True)
        result.seconds.update(executor.get(executor.finish(views, spec.options, folder, spec.blend, spec.overlay,
                                                                spec.sources)))
        result.status = DONE
    finally:
        for slot in in_flight.values():  # failed or cancelled: give the slots back to other takes
            pool.release(slot)
        if reader is not None:
            executor.release(reader)
        result.seconds["total"] = time.perf_counter() - t_start
    return result


# -- the batch --------------------------------------------------------------------------------------
def take_outputs_verify(spec, folder):
    """True when the take's outputs are all there and read back as valid take and views files."""
    from ..io.take import read_take
    from ..io.views import read_views

    paths = spec.outputs(folder)
    if not all(os.path.isfile(p) for p in paths):
        return False
    try:
        read_take(paths[0])
        read_views(paths[1])
    except (ChrommError, OSError, ValueError, KeyError):
        return False
    return all(os.path.getsize(p) > 0 for p in paths[2:])


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def error_line(exc):
    """One line for batch.json: the user-facing message, or the exception's type and first line."""
    cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError carries the task's exception
    if isinstance(cause, BaseException):
        exc = cause
    if isinstance(exc, ChrommError):
        return str(exc).splitlines()[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".strip()


class Batch:
    """Runs a manifest's takes through an executor into OUT_DIR, keeping OUT_DIR/batch.json current.

    Takes whose outputs are complete, verify and were made with the same settings are skipped.
    `events(kind, **info)` hears take_planned, window_submitted, window_done, take_fusing and
    take_finished (for progress bars and tests).
    """

    def __init__(self, specs, out_dir, executor, max_in_flight=None, events=None, manifest=None):
        self.specs, self.out_dir, self.executor = list(specs), os.path.abspath(out_dir), executor
        workers = executor.num_workers
        # Default: each worker has one window running and one waiting (decoded) behind it.
        self.pool = WorkerPool(workers, max_in_flight or 2 * workers)
        self.events = events or (lambda *a, **k: None)
        self._lock = threading.Lock()
        self.record = {"format": "chromm-batch", "version": 1, "manifest": manifest,
                       "executor": executor.describe(), "workers": workers,
                       "max_windows_in_flight": self.pool.max_in_flight,
                       "started": _now(), "updated": None, "finished": None, "takes": []}

    def folder(self, spec):
        return os.path.join(self.out_dir, spec.name)

    def run(self):
        check_output_folder(self.out_dir)
        previous = self._previous()
        todo = []
        for spec in self.specs:
            folder = self.folder(spec)
            entry = {"name": spec.name, "status": PENDING, "error": None, "fingerprint": spec.fingerprint,
                     "outputs": [os.path.relpath(p, self.out_dir) for p in spec.outputs(folder)],
                     "windows": 0, "timesteps": 0, "detections": 0, "seconds": {},
                     "started": None, "finished": None}
            old = previous.get(spec.name)
            if old and old.get("status") in (DONE, SKIPPED) and old.get("fingerprint") == spec.fingerprint \
                    and take_outputs_verify(spec, folder):
                entry.update({k: old.get(k, entry[k]) for k in ("windows", "timesteps", "detections",
                                                                 "seconds", "started", "finished")})
                entry["status"] = SKIPPED
            else:
                self._clear(folder, spec)
                todo.append(spec)
            self.record["takes"].append(entry)
        self._write()
        for spec in self.specs:
            if spec not in todo:
                self.events("take_finished", take=spec.name, status=SKIPPED)
        self._run_all(todo)
        self.record["finished"] = _now()
        self.record["peak_windows_in_flight"] = self.pool.peak
        self._write()
        return self.record

    def _run_all(self, todo):
        queue = collections.deque(todo)
        threads = []

        def loop():
            while True:
                with self._lock:
                    if not queue:
                        return
                    spec = queue.popleft()
                self._run_one(spec)

        for i in range(max(1, min(self.executor.concurrent_takes, len(todo)))):
            thread = threading.Thread(target=loop, name=f"chromm-take-{i}", daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()

    def _run_one(self, spec):
        self._update(spec, status=RUNNING, started=_now())
        try:
            result = run_take(spec, self.folder(spec), self.executor, self.pool, events=self.events)
            self._update(spec, status=DONE, finished=_now(), windows=result.windows,
                         timesteps=result.timesteps, detections=result.detections,
                         seconds={k: round(v, 3) for k, v in result.seconds.items()})
        except Exception as exc:  # noqa: BLE001 - a failing take must not stop the batch
            self._update(spec, status=FAILED, error=error_line(exc), finished=_now())
        entry = self._entry(spec)
        self.events("take_finished", take=spec.name, status=entry["status"], error=entry["error"])

    def _entry(self, spec):
        return next(e for e in self.record["takes"] if e["name"] == spec.name)

    def _update(self, spec, **fields):
        with self._lock:
            self._entry(spec).update(fields)
            self._write_locked()

    def _write(self):
        with self._lock:
            self._write_locked()

    def _write_locked(self):
        from ..io.atomic import atomic_output

        self.record["updated"] = _now()
        counts = collections.Counter(e["status"] for e in self.record["takes"])
        self.record["counts"] = {s: counts.get(s, 0) for s in (PENDING, RUNNING, DONE, SKIPPED, FAILED)}
        with atomic_output(os.path.join(self.out_dir, BATCH_FILE), suffix=".json") as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.record, fh, indent=1)

    def _previous(self):
        path = os.path.join(self.out_dir, BATCH_FILE)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            return {e["name"]: e for e in data.get("takes", []) if isinstance(e, dict) and "name" in e}
        except (OSError, ValueError, AttributeError, TypeError):
            return {}

    @staticmethod
    def _clear(folder, spec):
        """A take to redo starts from an empty slate: no old outputs, no stale staging folders."""
        if not os.path.isdir(folder):
            return
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if name.startswith(".chromm-stage-"):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.isfile(path) and (path in spec.outputs(folder) or name.startswith(".chromm-")):
                os.remove(path)
