"""One reconstruction as the add-on sees it: a state machine advanced off Blender's main thread.

`JobWorker` calls `Reconstruction.step()` in a background thread: connect (start the local
backend if needed), submit, poll progress, download the take. The main thread only reads
`snapshot()` (a timer redraws the panel) and, once the state is READY, builds the take and calls
`mark_applied()`; Blender data is never touched off the main thread.
"""

import os
import threading
import time

from ..errors import ChrommError
from .service import ServiceError

CONNECTING, QUEUED, RUNNING, DOWNLOADING = "connecting", "queued", "running", "downloading"
READY, APPLIED, FAILED, CANCELLED = "ready", "applied", "failed", "cancelled"
FINISHED = (READY, APPLIED, FAILED, CANCELLED)  # nothing left for the worker to do


class UploadCancelled(Exception):
    """Cancel pressed while the clips were being uploaded: the request is dropped."""


class Reconstruction:
    """`connect()` returns a ServiceClient (it may start the local backend: slow, so it runs in
    the worker too). `options` are the service's job options (offsets, fps, start, end, ...)."""

    def __init__(self, connect, clips, result_dir, options=None, max_unreachable=5):
        self.connect = connect
        self.clips = list(clips)
        self.options = dict(options or {})
        self.result_dir = result_dir
        self.max_unreachable = max_unreachable
        self._lock = threading.Lock()
        self._cancel = False
        self._cancel_sent = False
        self._unreachable = 0
        self.client = None
        self.job_id = None
        self.state, self.stage, self.error = CONNECTING, "starting the backend", None
        self.done = self.total = 0
        self.fraction, self.eta_s = 0.0, None
        self.take_path = None
        self.views_path = None
        self.started = time.time()
        self._upload_started, self._last_upload_report = None, 0.0

    # Called from the main thread.
    def snapshot(self):
        with self._lock:
            return {"state": self.state, "stage": self.stage, "fraction": self.fraction,
                    "eta_s": self.eta_s, "error": self.error, "take_path": self.take_path,
                    "views_path": self.views_path,
                    "job_id": self.job_id, "done": self.done, "total": self.total}

    def cancel(self):
        with self._lock:
            self._cancel = True

    def mark_applied(self):
        with self._lock:
            if self.state == READY:
                self.state, self.stage = APPLIED, "done"

    def fail(self, message):
        with self._lock:
            self.state, self.error = FAILED, message

    @property
    def finished(self):
        return self.state in FINISHED

    # Called from the worker thread.
    def step(self):
        """Advance by one request; returns True while there is more to do."""
        if self.finished:
            return False
        try:
            self._step()
            self._unreachable = 0
        except ServiceError as exc:
            if exc.status is None and self.client is not None:
                self._unreachable += 1  # a busy or restarting backend: retry a few times
                if self._unreachable < self.max_unreachable:
                    return True
                self._set(state=FAILED, error=f"{exc} — the backend stopped or is not reachable; "
                                               "check the backend settings in the preferences")
            else:
                self._set(state=FAILED, error=str(exc))
        except UploadCancelled:
            self._set(state=CANCELLED, stage="cancelled")
        except ChrommError as exc:
            self._set(state=FAILED, error=str(exc))
        except Exception as exc:  # keep the add-on usable whatever the backend does
            self._set(state=FAILED, error=f"unexpected error: {exc}")
        return not self.finished

    def _step(self):
        if self.client is None:
            self.client = self.connect()
        if self.job_id is None:
            if self._cancel:
                self._set(state=CANCELLED, stage="cancelled")
                return
            status = self.client.submit(self.clips, progress=self._upload_progress, **self.options)
            self.job_id = status["id"]
            self._apply_status(status)
            return
        if self._cancel and not self._cancel_sent:
            self._cancel_sent = True
            self._apply_status(self.client.cancel(self.job_id))
            self._set(stage="cancelling")
            return
        self._apply_status(self.client.status(self.job_id))
        if self._cancel and self.state == DOWNLOADING:  # it finished before the cancel landed
            self._set(state=CANCELLED, stage="cancelled")
        if self.state == DOWNLOADING:
            path = os.path.join(self.result_dir, f"chromm-{self.job_id}.npz")
            self.client.download_take(self.job_id, path)
            views = os.path.join(self.result_dir, f"chromm-{self.job_id}_views.npz")
            try:
                self.client.download_views(self.job_id, views)
            except ServiceError:
                views = None  # a backend without views files: the take cannot be refined
            self._set(state=READY, stage="building the scene", take_path=path, views_path=views,
                      fraction=1.0)

    def _upload_progress(self, sent, total):
        """Called by the upload after each block (a remote service: clips go up the wire)."""
        if self._cancel:
            raise UploadCancelled()
        now = time.monotonic()
        if sent < total and now - self._last_upload_report < 0.2:
            return
        if self._upload_started is None:
            self._upload_started = now
        elapsed = now - self._upload_started
        eta = elapsed / sent * (total - sent) if sent and elapsed > 0.5 else None
        self._last_upload_report = now
        self._set(stage=f"uploading clips ({sent / 1e6:.0f} of {total / 1e6:.0f} MB)",
                  fraction=sent / total if total else 0.0, eta_s=eta)

    def _apply_status(self, status):
        remote = status.get("state")
        state = {"queued": QUEUED, "running": RUNNING, "done": DOWNLOADING,
                 "failed": FAILED, "cancelled": CANCELLED}.get(remote)
        if state is None:
            raise ServiceError(f"backend answered an unknown job state {remote!r}", status=0)
        self._set(state=state, stage=status.get("stage") or remote, error=status.get("error"),
                  fraction=float(status.get("fraction") or 0.0), eta_s=status.get("eta_s"),
                  done=int(status.get("done") or 0), total=int(status.get("total") or 0))

    def _set(self, **fields):
        with self._lock:
            for key, value in fields.items():
                setattr(self, key, value)


class JobWorker(threading.Thread):
    """Steps a Reconstruction every `interval` seconds until it is finished."""

    def __init__(self, job, interval=0.5):
        super().__init__(daemon=True, name="chromm-job")
        self.job = job
        self.interval = interval

    def run(self):
        while self.job.step():
            time.sleep(self.interval)
