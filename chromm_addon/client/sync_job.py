"""The add-on's "Sync Clips": `python -m chromm_addon sync CLIP... --json` run in the backend's
environment, in a worker thread, so Blender stays responsive while the audio is decoded (or the
network runs, for motion). Stdlib only (no bpy): the operator polls `SyncJob.result()`.
"""

import json
import os
import subprocess
import threading

from ..errors import ChrommError
from .local_backend import PACKAGE_PARENT, backend_python

RUNNING, DONE, FAILED = "running", "done", "failed"


class SyncJob:
    def __init__(self, env_path, paths, method="auto", extra_args=()):
        self.python = backend_python(env_path)
        self.command = [self.python, "-m", "chromm_addon", "sync", *paths, "--json", "--method", method,
                        *extra_args]
        self.state, self.report, self.error = RUNNING, None, None
        self._lock = threading.Lock()
        self._process = None
        self._thread = threading.Thread(target=self._run, name="chromm sync", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
        try:
            self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, env=env, text=True)
            out, err = self._process.communicate()
            if self._process.returncode != 0:
                lines = [ln for ln in err.strip().splitlines() if ln.strip()]
                raise ChrommError((lines[-1] if lines else f"exit status {self._process.returncode}")
                                  .removeprefix("error: "))
            report = json.loads(out)
        except (OSError, ValueError, ChrommError) as exc:
            with self._lock:
                self.state, self.error = FAILED, str(exc)
            return
        with self._lock:
            self.state, self.report = DONE, report

    def snapshot(self):
        with self._lock:
            return self.state, self.report, self.error

    def cancel(self):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
