"""The local backend: one `serve` process started by the add-on, stopped when Blender exits.

It runs in the backend's own Python environment (with torch), never in Blender's. The extension
directory goes on PYTHONPATH so that environment imports this very `chromm_addon`.

The service generates its token and prints it in its handshake line on stdout, which only this
process reads (nothing is written to disk). Its stdin is a pipe whose write end only this process
holds; the service runs with `--exit-on-stdin-eof`, so when Blender exits in any way, `kill -9`
and crashes included, the system closes the pipe and the service stops (and removes its work
folder) instead of living on with the network loaded.
"""

import atexit
import json
import os
import subprocess
import threading
import time

from ..errors import ChrommError

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def backend_python(env_path):
    """The interpreter of a backend environment given as a venv folder or a python executable."""
    env_path = os.path.expanduser(str(env_path or ""))
    if not env_path:
        raise ChrommError("no backend environment set: choose the backend's Python environment "
                          "(a folder with bin/python, e.g. the project's .venv) in the preferences")
    if os.path.isdir(env_path):
        for rel in ("bin/python", "bin/python3", "Scripts/python.exe", "python.exe"):
            candidate = os.path.join(env_path, rel)
            if os.path.isfile(candidate):
                return candidate
        raise ChrommError(f"{env_path}: no Python interpreter in this environment folder")
    if os.path.isfile(env_path):
        return env_path
    raise ChrommError(f"{env_path}: backend environment not found")


class LocalBackend:
    """Start, reach and stop one local service. `start()` returns (url, token)."""

    def __init__(self, env_path, allow_dirs=(), weights=None, smplx=None, device="auto",
                 extra_args=(), startup_timeout=120.0):
        self.python = backend_python(env_path)
        self.allow_dirs = [d for d in allow_dirs if d]
        self.weights, self.smplx, self.device = weights, smplx, device
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.process = None
        self.url = self.token = None
        self._log = []
        self._handshake = None

    def command(self):
        cmd = [self.python, "-m", "chromm_addon", "serve", "--port", "0", "--exit-on-stdin-eof",
               "--device", self.device]
        for folder in self.allow_dirs:
            cmd += ["--allow-dir", folder]
        if self.weights:
            cmd += ["--weights", self.weights]
        if self.smplx:
            cmd += ["--smplx", self.smplx]
        return cmd + self.extra_args

    def start(self):
        if self.alive():
            return self.url, self.token
        env = backend_env()  # no inherited token: the service makes a fresh one for this session
        self._handshake = threading.Event()
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, text=True, bufsize=1)
        threading.Thread(target=self._drain, args=(self.process, self._handshake), daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._handshake.wait(0.05):
                return self.url, self.token
            if self.process.poll() is not None:
                self._fail(f"the local backend exited at start ({self.last_message()})")
        self.stop()
        self._fail(f"the local backend did not start within {self.startup_timeout:.0f} s "
                   f"({self.last_message()})")

    def _fail(self, message):
        raise ChrommError(message)

    def _drain(self, process, handshake):
        for line in process.stdout:
            if not handshake.is_set() and line.startswith('{"chromm_service"'):
                try:
                    hello = json.loads(line)
                    self.url, self.token = hello["url"], hello["token"]
                    handshake.set()
                    continue
                except (ValueError, KeyError):
                    pass
            self._log.append(line.rstrip())
            del self._log[:-200]

    def last_message(self):
        lines = [line for line in self._log if line.strip() and not line.startswith("{")]
        return lines[-1] if lines else "no output"

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=10.0):
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the service stops on its own at end of file
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_shared = {"backend": None}


def backend_env():
    """The environment a backend child runs with: this package importable, no inherited token."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    env.pop("CHROMM_SERVICE_TOKEN", None)
    return env


def convert_cameras(env_path, path, timeout=60.0):
    """A calibration file -> our camera document, read by the backend environment's interpreter
    (`python -m chromm_addon cameras`: the same readers, with the OpenCV Blender lacks)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "cameras.json")
        run = subprocess.run([backend_python(env_path), "-m", "chromm_addon", "cameras", path, "-o", out],
                             capture_output=True, text=True, timeout=timeout, env=backend_env())
        if run.returncode != 0:
            lines = [line for line in run.stderr.splitlines() if line.strip()]
            raise ChrommError(lines[-1].removeprefix("error: ") if lines else f"{path}: conversion failed")
        with open(out, encoding="utf-8") as f:
            return dict(json.load(f), source=path)


def shared_backend(env_path, **kwargs):
    """The add-on's one local backend (restarted with new settings if they changed)."""
    current = _shared["backend"]
    wanted = LocalBackend(env_path, **kwargs)
    if current is not None and current.alive() and current.command() == wanted.command():
        return current
    if current is not None:
        current.stop()
    _shared["backend"] = wanted
    return wanted


def stop_shared_backend():
    backend, _shared["backend"] = _shared["backend"], None
    if backend is not None:
        backend.stop()


atexit.register(stop_shared_backend)
