"""Background tasks of the preferences (Check, Download Weights, Install Backend).

A `Task` runs one function in a daemon thread; the function reports through the task (stage,
fraction, a detail line, findings) and runs its child processes through `run_process`, so Cancel
can stop them. Blender's main thread only reads `snapshot()` from a timer and redraws: nothing
here blocks the UI, and nothing touches Blender data.
"""

import os
import subprocess
import threading
import time

from ..errors import ChrommError

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
_ACTIVE = {}  # the add-on's current (or last) task of each kind: "install", "download", "check"


def active(name):
    """The add-on's current (or last) task `name`, or None."""
    return _ACTIVE.get(name)


def busy(name):
    t = _ACTIVE.get(name)
    return t is not None and not t.finished


def set_active(name, task):
    _ACTIVE[name] = task
    return task


def cancel_all():
    for t in _ACTIVE.values():
        t.cancel()
    _ACTIVE.clear()


class Cancelled(Exception):
    pass


class Task:
    def __init__(self, name, target, log_path=None):
        self.name = name
        self._target = target
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._process = None
        self.state, self.stage, self.detail, self.error = RUNNING, "starting", "", None
        self.fraction = None
        self.findings = []
        self.log_path = log_path
        self.started = time.time()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"chromm-{name}")

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        try:
            self._target(self)
            self.update(state=DONE)
        except Cancelled:
            self.update(state=CANCELLED, stage="cancelled")
        except ChrommError as exc:
            self.update(state=CANCELLED if self.cancelled else FAILED, error=str(exc))
        except Exception as exc:  # keep the add-on usable whatever happens
            self.update(state=FAILED, error=f"unexpected error: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ for the main thread
    def snapshot(self):
        with self._lock:
            return {"name": self.name, "state": self.state, "stage": self.stage, "detail": self.detail,
                    "fraction": self.fraction, "error": self.error, "findings": list(self.findings),
                    "log_path": self.log_path}

    @property
    def finished(self):
        return self.state != RUNNING

    def cancel(self):
        self._cancel.set()
        with self._lock:
            proc = self._process
        if proc is not None and proc.poll() is None:
            proc.terminate()

    # ------------------------------------------------------------------ for the worker
    @property
    def cancelled(self):
        return self._cancel.is_set()

    def check_cancel(self):
        if self._cancel.is_set():
            raise Cancelled()

    def update(self, **fields):
        with self._lock:
            for key, value in fields.items():
                setattr(self, key, value)

    def add_finding(self, finding):
        with self._lock:
            self.findings.append(finding)

    def log(self, text):
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8", errors="replace") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")

    def run_process(self, cmd, on_line=None, env=None, cwd=None):
        """Run `cmd`, feeding each output line (stdout and stderr together) to `on_line` and the
        log; returns (exit status, the last 30 lines). Cancel terminates it."""
        self.check_cancel()
        self.log("$ " + " ".join(str(c) for c in cmd))
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=env, cwd=cwd, text=True,
                                    bufsize=1, errors="replace")
        except OSError as exc:
            raise ChrommError(f"{cmd[0]}: cannot run it ({exc.strerror or exc})") from None
        with self._lock:
            self._process = proc
        tail = []
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                self.log(line)
                tail = (tail + [line])[-30:]
                if on_line is not None and not self.cancelled:
                    on_line(line)
            proc.wait()
        finally:
            with self._lock:
                self._process = None
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.check_cancel()
        return proc.returncode, tail


def backend_env(extra=None):
    """Environment for a child `python -m chromm_addon ...`: this very package on PYTHONPATH."""
    from .local_backend import PACKAGE_PARENT

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env
