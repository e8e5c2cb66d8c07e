"""The preferences' Check: a real self-test of the backend, run in the background.

Local mode runs `python -m chromm_addon selftest --json` with the backend's own Python (torch,
GPU and its memory, the weights and their hashes, the SMPL-X file, a dry run of the network);
its findings arrive one JSON line at a time and show as they come. Remote mode asks the service
(`/version`: the device it really uses, its GPU; `/health`: whether the network loaded). Each
finding names the fix in plain words and, where one exists, the button that applies it.
Plain Python, no bpy (runs in Blender's interpreter, tested without it).
"""

import dataclasses
import json

from ..errors import ChrommError
from .local_backend import backend_python
from .service import ServiceClient
from .tasks import Task, backend_env

INSTALL, DOWNLOAD, CHOOSE = "install_backend", "download_weights", "choose_smplx"
# The add-on's button for each fix: (operator id, label).
FIX_OPERATORS = {INSTALL: ("chromm.install_backend", "Install Backend"),
                 DOWNLOAD: ("chromm.download_weights", "Download Weights"),
                 CHOOSE: ("chromm.choose_smplx", "Choose File")}
LEVELS = ("ok", "warning", "error")


@dataclasses.dataclass
class Finding:
    level: str            # ok, warning or error
    what: str
    fix: str = ""
    action: str = ""      # the add-on button that fixes it: install_backend, download_weights, choose_smplx

    @property
    def ok(self):
        return self.level != "error"


def check_setup(mode, env_path="", weights_dir="", smplx_path="", url="", token="", device="auto",
                extra_args=(), task=None):
    """Run the check (in the caller's thread); returns the findings. With `task`, each finding is
    also added to it as it arrives, and Cancel stops the backend's self-test."""
    task = task or Task("check", lambda t: None)
    found = []

    def add(finding):
        found.append(finding)
        task.add_finding(finding)

    if mode == "LOCAL":
        _check_local(task, add, env_path, weights_dir, smplx_path, device, extra_args)
    else:
        _check_remote(add, url, token)
        add(check_smplx_file(smplx_path))
    return found


def check_task(**kwargs):
    """A started background Task running `check_setup(**kwargs)`."""
    return Task("check", lambda task: check_setup(task=task, **kwargs)).start()


def _check_local(task, add, env_path, weights_dir, smplx_path, device, extra_args):
    try:
        python = backend_python(env_path)
    except ChrommError as exc:
        add(Finding("error", f"no backend installed ({exc})",
                    "press Install Backend: it sets up the backend in the add-on's own folder",
                    INSTALL))
        add(check_smplx_file(smplx_path))
        return
    cmd = [python, "-m", "chromm_addon", "selftest", "--json", "--device", device]
    cmd += ["--weights", weights_dir] if weights_dir else []
    cmd += ["--smplx", smplx_path] if smplx_path else []
    cmd += [a for a in extra_args if a == "--tiny-network"]
    task.update(stage="checking the backend")
    other = []

    def on_line(line):
        try:
            record = json.loads(line)
            add(Finding(record["level"], record["what"], record.get("fix", ""), record.get("action", "")))
        except (ValueError, KeyError, TypeError):
            other.append(line)

    status, _ = task.run_process(cmd, on_line, env=backend_env())
    if status != 0 and not any(f.level == "error" for f in task.findings):
        missing = next((l for l in other if "No module named" in l), None)
        last = missing or next((l for l in reversed(other) if l.strip()), f"exit status {status}")
        add(Finding("error", f"the backend at {python} does not work: {last.strip()}",
                    "press Install Backend to repair it", INSTALL))


def _check_remote(add, url, token):
    if not url:
        add(Finding("error", "remote service: no URL set",
                    "enter the service's URL and token (ask whoever runs the GPU server)"))
        return
    client = ServiceClient(url, token, timeout=10.0)
    try:
        info = client.version()
        health = client.health()
    except ChrommError as exc:
        add(Finding("error", f"remote service: {exc}",
                    "check the URL and the token, and that the service is running on the server"))
        return
    device = info.get("device") or "unknown device"
    where = info.get("gpu") or device
    add(Finding("ok", f"remote service {url}: CHROMM {info.get('version')}, network "
                      f"'{info.get('network')}' on {where}; clips are "
                      + ("read from its folders or uploaded" if info.get("accepts_paths") else "uploaded")))
    state = health.get("network", "")
    if str(state).startswith("error"):
        add(Finding("error", f"remote service: the network did not load ({state})",
                    "ask whoever runs the service to check its weights (`weights check` there)"))
    elif not info.get("gpu") and device == "cpu" and info.get("network") != "tiny":
        add(Finding("warning", f"remote service {url} runs the network on its CPU: very slow",
                    "run the service on a machine with an NVIDIA GPU"))
    elif state != "ready":
        add(Finding("warning", f"remote service: its network is {state or 'in an unknown state'}",
                    "press Check again in a minute"))
    else:
        add(Finding("ok", f"Ready: {where} at {url}"))


def check_smplx_file(path):
    from ..body.model_file import REGISTER_HINT, describe_model_file

    if not path:
        return Finding("warning", "no SMPL-X model file: people become procedural mannequins, not SMPL-X bodies",
                       REGISTER_HINT, CHOOSE)
    try:
        return Finding("ok", f"SMPL-X: {describe_model_file(path)}")
    except ChrommError as exc:
        return Finding("error", str(exc), REGISTER_HINT, CHOOSE)
