"""Install Backend: the backend's Python environment made by the add-on, no terminal needed.

A venv in the extension's user folder, made with Blender's own Python (or one the user picks),
into which pip installs `vendor/requirements-backend.txt` with the torch build that fits:

| system | GPU (nvidia-smi) | torch from |
|---|---|---|
| Linux x86_64 | NVIDIA | PyPI (its Linux wheel is the CUDA build) |
| Linux | none | PyTorch's CPU index (skips ~3 GB of CUDA libraries) |
| Windows | NVIDIA | PyTorch's index, CUDA flavour from the driver version (`CUDA_BY_DRIVER`) |
| Windows | none | PyPI (its Windows wheel is the CPU build) |
| macOS | - | PyPI (MPS on Apple silicon) |

torch is installed first, alone (its index may be PyTorch's), then the other requirements from
the usual indexes. pip is run as a child process (`--progress-bar raw` gives bytes) and its
output goes to a log file; a failure is one line (no network, no disk space, or pip's last
error lines). Re-running repairs or upgrades the same environment; when the stamp and every
installed version match the pins it is a quick no-op. Stdlib only, no bpy.
"""

import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys

from ..errors import ChrommError
from ..io.json_file import read_json_dict
from .tasks import backend_env

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REQUIREMENTS = os.path.join(PACKAGE_ROOT, "vendor", "requirements-backend.txt")
TORCH_INDEX = "https://download.pytorch.org/whl"
# Minimum NVIDIA driver of each CUDA flavour of PyTorch's Windows wheels (newest first), from
# NVIDIA's CUDA toolkit release notes (Windows driver versions, rounded down to the branch).
CUDA_BY_DRIVER = ((580, "cu130"), (570, "cu128"), (560, "cu126"))
PIP_MIN = "pip>=24.1"  # the first pip with `--progress-bar raw`
DISK_NEEDED = {"cuda": 8 << 30, "cpu": 2 << 30}
STAMP = "chromm-install.json"


@dataclasses.dataclass
class TorchSource:
    index_url: str       # "" for the default indexes (PyPI)
    build: str           # "cuda", "cpu" or "mps"
    note: str            # one line for the user


def nvidia_driver():
    """(driver version, GPU name) from nvidia-smi, or None when there is no NVIDIA GPU."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version,name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = out.strip().splitlines()[0] if out.strip() else ""
    if "," not in line:
        return None
    version, name = (part.strip() for part in line.split(",", 1))
    return version, name


def torch_source(system=None, machine=None, driver=None, override=None):
    """Where torch comes from on this machine (see the table above). `override`: an index URL,
    or "pypi" for the default indexes (mirrors and offline machines; `$CHROMM_TORCH_INDEX`)."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    override = os.environ.get("CHROMM_TORCH_INDEX") if override is None else override
    gpu = f"{driver[1]} (driver {driver[0]})" if driver else None
    if system == "Darwin":
        src = TorchSource("", "mps", "macOS: the default PyTorch build (Apple GPU through MPS)")
    elif driver is None:
        src = TorchSource(f"{TORCH_INDEX}/cpu" if system == "Linux" else "", "cpu",
                          "no NVIDIA GPU found: installing the CPU build of PyTorch "
                          "(the network will be very slow; Remote mode can use a GPU server)")
    elif system == "Windows":
        major = int(re.match(r"\d+", driver[0]).group()) if re.match(r"\d+", driver[0]) else 0
        flavour = next((f for minimum, f in CUDA_BY_DRIVER if major >= minimum), None)
        if flavour is None:
            src = TorchSource("", "cpu", f"{gpu}: this driver is too old for PyTorch's CUDA "
                                         f"builds (needs {CUDA_BY_DRIVER[-1][0]} or newer); "
                                         "installing the CPU build: update the NVIDIA driver "
                                         "and press Install Backend again")
        else:
            src = TorchSource(f"{TORCH_INDEX}/{flavour}", "cuda",
                              f"{gpu}: PyTorch's CUDA build {flavour} from download.pytorch.org")
    elif machine in ("x86_64", "amd64"):
        src = TorchSource("", "cuda", f"{gpu}: PyPI's CUDA build of PyTorch")
    else:
        src = TorchSource("", "cpu", f"{system} {machine}: the default PyTorch build")
    if override:
        src = dataclasses.replace(src, index_url="" if override == "pypi" else override)
    return src


def read_pins(requirements=REQUIREMENTS):
    """{normalised name: version} of the `name==version` lines (extras dropped: `ray[default]` is `ray`)."""
    pins = {}
    with open(requirements, encoding="utf-8") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[_norm(name.split("[", 1)[0])] = version.strip()
    return pins


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def venv_python(venv):
    for rel in ("bin/python", "Scripts/python.exe"):
        path = os.path.join(venv, rel)
        if os.path.isfile(path):
            return path
    return None


def installed_versions(python, names):
    """{name: version or None} read in the environment with importlib.metadata (no imports)."""
    code = ("import json, sys, importlib.metadata as m\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "print(json.dumps(out))")
    try:
        proc = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, timeout=60)
        return json.loads(proc.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _matches(pin, have):
    return have is not None and (have == pin or have.split("+", 1)[0] == pin)


def _stamp(requirements, source, base_python):
    with open(requirements, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    return {"requirements": digest, "torch_index": source.index_url, "base_python": base_python}


def _read_stamp(venv):
    return read_json_dict(os.path.join(venv, STAMP))


def is_complete(venv, requirements=REQUIREMENTS, source=None, base_python=None):
    """True when the environment has every pin installed and was made for the same torch source."""
    python = venv_python(venv)
    stamp = _read_stamp(venv)
    if python is None or not stamp:
        return False
    if source is not None and stamp != _stamp(requirements, source, base_python or stamp.get("base_python")):
        return False
    pins = read_pins(requirements)
    have = installed_versions(python, list(pins))
    return bool(have) and all(_matches(v, have.get(k)) for k, v in pins.items())


# Failures, in the order they are looked for in pip's output.
_NO_DISK = ("No space left on device", "[Errno 28]")
_NO_NETWORK = ("Failed to establish a new connection", "Temporary failure in name resolution",
               "Network is unreachable", "Name or service not known", "ConnectTimeoutError",
               "Could not fetch URL", "getaddrinfo failed", "ProxyError")


def explain_pip_failure(tail, target):
    text = "\n".join(tail)
    if any(s in text for s in _NO_DISK):
        return f"{target}: not enough disk space to install the backend; free some space and press Install Backend again"
    errors = [l.strip() for l in tail if l.strip().startswith("ERROR:")]
    if any(s in text for s in _NO_NETWORK) and (not errors or "No matching distribution" in text
                                                or "Could not find a version" in text):
        return ("no network: pip could not reach the package index; check the internet "
                "connection (and a proxy, if you use one), then press Install Backend again")
    last = errors[-2:] if errors else [l.strip() for l in tail if l.strip()][-2:]
    return "pip failed: " + " | ".join(last or ["no output"])


class PipProgress:
    """Reads pip's output: the package being fetched, its bytes (`--progress-bar raw`), stage."""

    def __init__(self, task, total_packages):
        self.task, self.total = task, max(1, total_packages)
        self.count, self.package = 0, ""

    def __call__(self, line):
        line = line.strip()
        m = re.match(r"Collecting (\S+)", line)
        if m:
            self.count += 1
            self.package = re.split(r"[=<>!~\[ ]", m.group(1))[0]
            self.task.update(detail=f"{self.package} ({self.count} of about {self.total} packages)")
            return
        m = re.match(r"Downloading (\S+) \(([\d.]+ [kMG]?B)\)", line)
        if m:
            self.task.update(detail=f"downloading {m.group(1)} ({m.group(2)})")
            return
        m = re.match(r"Progress (\d+) of (\d+)", line)
        if m:
            done, total = int(m.group(1)), int(m.group(2))
            self.task.update(detail=f"{self.package}: {done / 1e6:.0f} of {total / 1e6:.0f} MB",
                             fraction=done / total if total else None)
            return
        if line.startswith("Installing collected packages"):
            self.task.update(detail="unpacking the packages (this can take a few minutes)",
                             fraction=None)


def install_backend(task, target, base_python=None, requirements=REQUIREMENTS, source=None):
    """Make or repair the backend in `target` (a venv folder); returns its python.

    `task`: a tasks.Task (stage, detail, fraction, log, cancel). Raises ChrommError."""
    base_python = base_python or sys.executable
    if source is None:
        task.update(stage="looking for an NVIDIA GPU")
        source = torch_source(driver=nvidia_driver())
    task.log(f"torch source: {source.note} (index: {source.index_url or 'default'})")
    task.update(detail=source.note)
    if is_complete(target, requirements, source, base_python):
        task.update(stage="already installed", detail=f"{source.note}; nothing to do", fraction=1.0)
        return venv_python(target)
    os.makedirs(target, exist_ok=True)
    free = shutil.disk_usage(target).free
    need = DISK_NEEDED["cuda" if source.build == "cuda" else "cpu"]
    if free < need:
        raise ChrommError(f"{target}: {free / 2**30:.1f} GB free, the backend needs about "
                          f"{need / 2**30:.0f} GB; free some space and press Install Backend again")
    python = venv_python(target)
    made_from = _read_stamp(target).get("base_python")
    if made_from and made_from != base_python:
        python = None  # another interpreter was chosen: make the environment again from it
    if python is None or installed_versions(python, ["pip"]) is None:
        task.update(stage="creating the environment", fraction=None)
        status, tail = task.run_process([base_python, "-m", "venv", "--clear", target])
        python = venv_python(target)
        if status != 0 or python is None:
            raise ChrommError(f"{base_python}: could not create a Python environment in {target} "
                              f"({(tail or ['no output'])[-1].strip()}); choose another Python "
                              "in the preferences")
    env = backend_env({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"})
    pip = [python, "-m", "pip"]

    def pip_run(stage, args, count):
        task.update(stage=stage, fraction=None)
        status, tail = task.run_process(pip + args, PipProgress(task, count), env=env)
        if status != 0:
            raise ChrommError(explain_pip_failure(tail, target))

    pins = read_pins(requirements)
    have = installed_versions(python, ["pip"]) or {}
    if not have.get("pip") or tuple(int(x) for x in re.findall(r"\d+", have["pip"])[:2]) < (24, 1):
        pip_run("updating pip", ["install", "--upgrade", PIP_MIN], 1)
    raw = ["--progress-bar", "raw"]
    torch_pin = f"torch=={pins['torch']}" if "torch" in pins else "torch"
    torch_args = ["install", *raw, torch_pin]
    if source.index_url:
        torch_args += ["--index-url", source.index_url]
    pip_run(f"installing PyTorch ({source.build} build)", torch_args, 20 if source.build == "cuda" else 8)
    pip_run("installing the other packages", ["install", *raw, "-r", requirements], 40)
    task.update(stage="checking the installation", fraction=None, detail="")
    status, tail = task.run_process([python, "-c", "import torch, numpy, fastapi, huggingface_hub; "
                                                   "print('torch', torch.__version__)"], env=env)
    if status != 0:
        raise ChrommError(f"{target}: the backend does not import after installing "
                          f"({(tail or ['no output'])[-1].strip()}); see the log")
    from ..io.atomic import atomic_output

    with atomic_output(os.path.join(target, STAMP), suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(_stamp(requirements, source, base_python), fh)
    task.update(stage="installed", detail=source.note, fraction=1.0)
    return python
