"""The preferences' "Check" button: what is present, what is missing, and the fix for each.

Plain Python (runs in Blender's interpreter, tested without it). The backend environment is
probed by running it (`python -m chromm_addon weights check`), never by importing torch here.
"""

import dataclasses
import os
import subprocess

from ..body.model_file import load_smplx_model
from ..errors import ChrommError
from .local_backend import PACKAGE_PARENT, backend_python
from .service import ServiceClient


@dataclasses.dataclass
class Finding:
    ok: bool
    what: str
    fix: str = ""


_LAST_FINDINGS = []


def last_findings():
    """The findings of the last `check_setup` (what the preferences show under "Check")."""
    return list(_LAST_FINDINGS)


def check_setup(mode, env_path="", weights_dir="", smplx_path="", url="", token="", timeout=60.0):
    """Findings for the configured backend, weights and SMPL-X model file (kept for `last_findings`)."""
    findings = []
    if mode == "LOCAL":
        findings += _check_local(env_path, weights_dir, timeout)
    else:
        findings.append(_check_remote(url, token))
    findings.append(_check_smplx(smplx_path))
    _LAST_FINDINGS[:] = findings
    return findings


def _check_local(env_path, weights_dir, timeout):
    try:
        python = backend_python(env_path)
    except ChrommError as exc:
        return [Finding(False, f"backend environment: {exc}",
                        "create it with `make venv` in the CHROMM repository (or any Python 3.11 "
                        "environment with vendor/requirements-backend.txt) and select its folder")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p))
    cmd = [python, "-m", "chromm_addon", "weights", "check"] + ([weights_dir] if weights_dir else [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Finding(False, f"backend environment {python}: cannot run ({exc})",
                        "select a working Python environment in the preferences")]
    findings = [Finding(True, f"backend environment: {python}")]
    output = (proc.stdout + proc.stderr).strip()
    if "No module named" in output:
        line = next(l for l in output.splitlines() if "No module named" in l)
        return [Finding(False, f"backend environment {python}: {line.strip()}",
                        "install the backend requirements into it: "
                        "`pip install -r vendor/requirements-backend.txt`")]
    last = output.splitlines()[-1] if output else "no output"
    findings.append(Finding(proc.returncode == 0, f"network weights: {last}",
                            "" if proc.returncode == 0 else
                            "put the files where `python -m chromm_addon weights check` says, "
                            "or choose the weights folder in the preferences"))
    return findings


def _check_remote(url, token):
    if not url:
        return Finding(False, "remote backend: no URL set", "enter the service URL and token")
    try:
        info = ServiceClient(url, token, timeout=5.0).version()
    except ChrommError as exc:
        return Finding(False, f"remote backend: {exc}",
                       "start it with `python -m chromm_addon serve --host 0.0.0.0 --token ...` "
                       "and check the URL and token")
    return Finding(True, f"remote backend {url}: CHROMM {info.get('version')} "
                         f"({info.get('network')}, {info.get('device')})")


def _check_smplx(path):
    if not path:
        return Finding(False, "SMPL-X model file: not set (people will be procedural mannequins)",
                       "download SMPLX_NEUTRAL.npz from smpl-x.is.tue.mpg.de and select it")
    try:
        model = load_smplx_model(path)
    except ChrommError as exc:
        return Finding(False, f"SMPL-X model file: {exc}",
                       "select SMPLX_NEUTRAL.npz (the .npz of SMPL-X v1.1)")
    return Finding(True, f"SMPL-X model file: {path} ({model.num_vertices} vertices, "
                         f"{model.shapedirs.shape[2]} shape components)")
