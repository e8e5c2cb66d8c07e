"""The job queue: one worker thread owns the network; a bounded queue of reconstructions.

Jobs live in the service, not in a client connection: a client that disconnects can come back for
the status and the take. A cancelled or failed job leaves no output (the pipeline stages its
files) and its uploads and device memory are freed before the next job starts.

Each job's folder in the work dir holds a record (`job.json`), so a service restarted on the same
work dir after a crash or `kill -9` serves the finished jobs again and removes what the dead
service left unfinished (`JobQueue.recover`). Only folders with a record are ever removed. One
service at a time owns a work dir (an exclusive lock on `.chromm-service.lock`).
"""

import collections
import dataclasses
import gc
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid

from ..errors import ChrommError
from ..network.registry import load_runner
from .pipeline import Cancelled, reconstruct
from .progress import Progress

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class QueueFull(Exception):
    pass


RECORD = "job.json"
LOCK = ".chromm-service.lock"
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclasses.dataclass
class Job:
    id: str
    options: object
    folder: str
    upload_folder: str = None
    sources: list = None   # what the client submitted, per clip (its path, or an upload's file name)
    aliases: dict = None   # where the service keeps a clip -> the name the client knows it by
    state: str = QUEUED
    error: str = None
    created: float = dataclasses.field(default_factory=time.time)
    started: float = None
    finished: float = None
    timesteps: int = 0
    progress: Progress = dataclasses.field(default_factory=Progress)
    cancel_event: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def take_path(self):
        return os.path.join(self.folder, "take.npz")

    @property
    def views_path(self):
        return os.path.join(self.folder, "views.npz")

    def status(self):
        snap = self.progress.snapshot()
        if self.state == DONE:
            snap.update(fraction=1.0, eta_s=0.0)
        return {"id": self.id, "state": self.state, "error": self.error,
                "clips": [os.path.basename(str(c)) for c in self.sources],
                "created": self.created, "started": self.started, "finished": self.finished,
                "timesteps": self.timesteps, **snap}

    def public(self, message):
        """`message` with every place the service keeps this job's clips replaced by the names
        the client gave them, and the job's folder never shown."""
        message = str(message)
        for internal, shown in sorted((self.aliases or {}).items(), key=lambda kv: -len(kv[0])):
            message = message.replace(internal, shown)
        return message.replace(self.folder, "<job>")

    def record(self):
        return {"id": self.id, "state": self.state, "error": self.error, "sources": self.sources,
                "created": self.created, "started": self.started, "finished": self.finished,
                "timesteps": self.timesteps}

    def save(self):
        """Write the job's record into its folder (atomically; a missing folder is left missing)."""
        if not os.path.isdir(self.folder):
            return
        tmp = os.path.join(self.folder, f".{RECORD}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.record(), fh)
            os.replace(tmp, os.path.join(self.folder, RECORD))
        except OSError:
            pass  # the folder went away (job removed); nothing to keep

    def close_clips(self):
        for clip in (self.options.clips if self.options is not None else ()):
            close = getattr(clip, "close", None)
            if close is not None:
                close()


class JobQueue:
    """Submit, list, cancel and remove jobs; `start()` runs the worker thread."""

    def __init__(self, work_dir, runner_options, max_queued=8, keep_finished=50, executor_factory=None):
        self.work_dir = work_dir
        # With a factory (`serve --ray`) jobs run through the batch's steps on that executor
        # (cluster.RayExecutor): windows spread over the cluster's GPU workers.
        self._executor_factory, self._executor, self._pool = executor_factory, None, None
        self.runner_options = runner_options  # ReconstructOptions: its service options (network, device, ...)
        self.max_queued, self.keep_finished = int(max_queued), int(keep_finished)
        self._jobs = collections.OrderedDict()
        self._pending = collections.deque()
        self._lock = threading.Condition()
        self._runner = None
        self.network_state = "not loaded"  # "loading", "ready" or "error: ..."
        self._thread = None
        self._stopping = False
        self._lock_file = None

    # -- the work dir ----------------------------------------------------------------------------
    def claim_work_dir(self):
        """Take the work dir's lock (ChrommError when another live service holds it)."""
        os.makedirs(self.work_dir, exist_ok=True)
        fh = open(os.path.join(self.work_dir, LOCK), "a+")  # noqa: SIM115 - held while the service runs
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # Windows: no advisory lock; one service per work dir is up to the user
            pass
        except OSError:
            fh.close()
            raise ChrommError(f"--work-dir {self.work_dir}: another running service uses this folder") from None
        self._lock_file = fh

    def recover(self):
        """After a crash: keep the finished jobs a dead service left (their take is served again),
        remove every other job folder it left (queued, running or half-uploaded). Returns
        (kept, removed) counts. Only folders holding a job record are touched."""
        kept = removed = 0
        for name in sorted(os.listdir(self.work_dir)):
            folder = os.path.join(self.work_dir, name)
            record_path = os.path.join(folder, RECORD)
            if not (_JOB_ID.match(name) and os.path.isdir(folder) and not os.path.islink(folder)
                    and os.path.isfile(record_path)):
                continue
            try:
                with open(record_path, encoding="utf-8") as fh:
                    record = json.load(fh)
            except (OSError, ValueError):
                record = {}
            job = Job(id=name, options=None, folder=folder, sources=list(record.get("sources") or []))
            if record.get("state") == DONE and os.path.isfile(job.take_path) and os.path.isfile(job.views_path):
                for key in ("state", "error", "created", "started", "finished", "timesteps"):
                    setattr(job, key, record.get(key, getattr(job, key)))
                job.progress("done", 1, 1)
                self._jobs[name] = job
                kept += 1
            else:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        with self._lock:
            self._forget_old()
        return kept, removed

    def remove_unfinished(self):
        """At shutdown: delete the folders of every job that is not done (done ones stay, with
        their records, for the next service on this work dir)."""
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state != DONE:
                    self._delete_files(job, outputs=True)

    # -- client side ---------------------------------------------------------------------------
    def new_job_folder(self):
        job_id = uuid.uuid4().hex[:16]
        folder = os.path.join(self.work_dir, job_id)
        os.makedirs(folder)
        Job(id=job_id, options=None, folder=folder, state="receiving", sources=[]).save()
        return job_id, folder

    def discard_job_folder(self, folder):
        """Remove a job folder that never became a job (a refused or broken upload)."""
        shutil.rmtree(folder, ignore_errors=True)

    def submit(self, options, job_id=None, folder=None, upload_folder=None, sources=None, aliases=None):
        with self._lock:
            if len(self._pending) >= self.max_queued:
                raise QueueFull(f"the queue is full ({self.max_queued} jobs waiting); try again later")
            if job_id is None:
                job_id, folder = self.new_job_folder()
            sources = [str(c) for c in options.clips] if sources is None else list(sources)
            job = Job(id=job_id, options=options, folder=folder, upload_folder=upload_folder,
                      sources=sources, aliases=dict(aliases or {}))
            job.save()
            self._jobs[job_id] = job
            self._pending.append(job)
            self._forget_old()
            self._lock.notify_all()
            return job

    def get(self, job_id):
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self):
        with self._lock:
            return list(self._jobs.values())

    def counts(self):
        with self._lock:
            running = [j.id for j in self._jobs.values() if j.state == RUNNING]
            return len(self._pending), (running[0] if running else None)

    def cancel(self, job_id):
        """Cancel a queued job at once, a running one at its next check; finished jobs stay as they are."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return job
            job.cancel_event.set()
            if job.state == QUEUED:
                self._pending.remove(job)
                self._finish(job, CANCELLED, "cancelled before it started")
            return job

    def remove(self, job_id):
        """Cancel if needed and forget the job with its files."""
        job = self.cancel(job_id)
        if job is None:
            return None
        with self._lock:
            self._jobs.pop(job_id, None)
            if job.state != RUNNING:
                self._delete_files(job, outputs=True)
            # a running job deletes its own files when the worker notices the cancel
        return job

    # -- worker side ---------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._work, name="chromm-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout=10.0):
        """Cancel everything and wait for the worker; True when it has ended."""
        with self._lock:
            self._stopping = True
            for job in list(self._pending):
                job.cancel_event.set()
            running = [j for j in self._jobs.values() if j.state == RUNNING]
            for job in running:
                job.cancel_event.set()
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._executor is not None:
            self._executor.shutdown()
        return self._thread is None or not self._thread.is_alive()

    def _load_runner(self):
        if self._executor_factory is not None:
            return self._load_executor()
        if self._runner is None:
            self.network_state = "loading"
            try:
                self._runner = load_runner(self.runner_options)
            except Exception as exc:
                self.network_state = f"error: {exc}"
                raise
            self.network_state = "ready"
        return self._runner

    def _load_executor(self):
        if self._executor is None:
            from .batch import WorkerPool

            self.network_state = "loading"
            try:
                self._executor = self._executor_factory()
            except Exception as exc:
                self.network_state = f"error: {exc}"
                raise
            workers = self._executor.num_workers
            self._pool = WorkerPool(workers, 2 * workers)
            self.network_state = f"ready ({self._executor.describe()}, {workers} workers)"
        return self._executor

    def _run_on_executor(self, job):
        """The job through the batch's steps (reader, workers, alignment here, fusion task)."""
        from .batch import TakeSpec, run_take

        executor = self._load_executor()
        counts = {"done": 0, "planned": 0}

        def events(kind, **info):
            if kind == "take_planned":
                counts["planned"] = info["windows"]
                job.progress("network", 0, counts["planned"])
            elif kind == "window_done":
                counts["done"] += 1
                job.progress("network", counts["done"], max(counts["planned"], counts["done"]))
            elif kind == "take_fusing":
                job.progress("fuse", 0, 1)

        def cancel():
            if job.cancel_event.is_set():
                raise Cancelled()

        try:
            # Ray's readers run in other processes (other nodes): they open each clip by the path
            # checked at submission, not through this process's descriptor (docs/backend.md).
            options = dataclasses.replace(job.options, clips=[getattr(c, "real", c) for c in job.options.clips])
            result = run_take(TakeSpec(job.id, options, sources=job.sources), job.folder, executor, self._pool,
                              events=events, cancel=cancel)
        except Exception as exc:
            cause = getattr(exc, "cause", None)  # a step's own error, carried by Ray's task error
            if isinstance(cause, (ChrommError, Cancelled)):
                raise cause from None
            raise
        job.timesteps = result.timesteps

    def _work(self):
        try:  # load the network before the first job arrives
            self._load_runner()
        except Exception:  # noqa: BLE001 - reported by /health and by each job that needs it
            pass
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                job = self._pending.popleft()
                job.state, job.started = RUNNING, time.time()
            self._run(job)

    def _run(self, job):
        try:
            if self._runner is None and self._executor is None:
                job.progress("loading", 0, 1)
            if self._executor_factory is not None:
                self._run_on_executor(job)
            else:
                runner = self._load_runner()
                stats = reconstruct(job.options, job.take_path, views_out=job.views_path,
                                    runner=runner, progress=job.progress, cancel=job.cancel_event,
                                    sources=job.sources)
                job.timesteps = stats.timesteps
            outcome, error = DONE, None
        except Cancelled:
            outcome, error = CANCELLED, "cancelled"
        except ChrommError as exc:
            outcome, error = FAILED, job.public(exc)
        except Exception as exc:  # noqa: BLE001 - a job's failure must not stop the worker
            print(f"job {job.id}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            outcome, error = FAILED, f"internal error ({type(exc).__name__}); see the service's log"
        with self._lock:
            if job.cancel_event.is_set() and outcome == DONE:
                outcome, error = CANCELLED, "cancelled"
            self._finish(job, outcome, error)
            if job.id not in self._jobs:  # removed while it ran
                self._delete_files(job, outputs=True)
        _free_memory()

    def _finish(self, job, state, error):
        job.state, job.error, job.finished = state, error, time.time()
        job.progress("done" if state == DONE else state, 1, 1)
        job.close_clips()
        self._delete_files(job, outputs=state != DONE)
        job.save()

    def _delete_files(self, job, outputs):
        if job.upload_folder:
            shutil.rmtree(job.upload_folder, ignore_errors=True)
        if outputs:
            job.close_clips()
            shutil.rmtree(job.folder, ignore_errors=True)

    def _forget_old(self):
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            self._jobs.pop(job.id, None)
            self._delete_files(job, outputs=True)


def _free_memory():
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
