"""Install Backend: the torch build per machine, pip's failures in one line, and (slow) a real
install into a fresh folder that ends with a working backend, then a quick no-op re-run."""

import os
import subprocess
import sys

import pytest

from chromm_addon.client.installer import (REQUIREMENTS, explain_pip_failure, install_backend,
                                           is_complete, read_pins, torch_source, venv_python)
from chromm_addon.client.tasks import DONE, FAILED, Task, backend_env


def test_torch_build_for_each_kind_of_machine():
    linux_gpu = torch_source("Linux", "x86_64", ("575.51.03", "NVIDIA RTX 4090"), override="")
    assert linux_gpu.index_url == "" and linux_gpu.build == "cuda" and "RTX 4090" in linux_gpu.note
    linux_cpu = torch_source("Linux", "x86_64", None, override="")
    assert linux_cpu.index_url == "https://download.pytorch.org/whl/cpu" and linux_cpu.build == "cpu"
    assert "no NVIDIA GPU found" in linux_cpu.note
    for driver, flavour in (("581.42", "cu130"), ("572.16", "cu128"), ("561.09", "cu126")):
        win = torch_source("Windows", "AMD64", (driver, "NVIDIA RTX 3060"), override="")
        assert win.index_url == f"https://download.pytorch.org/whl/{flavour}" and win.build == "cuda"
    old = torch_source("Windows", "AMD64", ("531.79", "NVIDIA GTX 1080"), override="")
    assert old.build == "cpu" and "update the NVIDIA driver" in old.note
    assert torch_source("Windows", "AMD64", None, override="").index_url == ""  # PyPI's is CPU
    mac = torch_source("Darwin", "arm64", None, override="")
    assert mac.index_url == "" and mac.build == "mps"
    assert torch_source("Linux", "x86_64", None, override="pypi").index_url == ""


def test_pip_failures_are_one_line():
    target = "/x/backend"
    disk = ["Installing collected packages: torch", "ERROR: Could not install packages due to an "
            "OSError: [Errno 28] No space left on device"]
    assert "not enough disk space" in explain_pip_failure(disk, target)
    net = ["WARNING: Retrying ... Failed to establish a new connection: [Errno -3] Temporary "
           "failure in name resolution", "ERROR: Could not find a version that satisfies the "
           "requirement torch==2.13.0 (from versions: none)", "ERROR: No matching distribution found"]
    assert explain_pip_failure(net, target).startswith("no network:")
    other = ["Collecting nope==1", "ERROR: Could not find a version that satisfies the requirement "
             "nope==1 (from versions: none)", "ERROR: No matching distribution found for nope==1"]
    line = explain_pip_failure(other, target)
    assert line.startswith("pip failed: ERROR: Could not find") and line.endswith("for nope==1")
    assert "\n" not in line
    assert read_pins()["torch"] == "2.13.0" and read_pins()["huggingface-hub"] == "2.4.0"
    assert read_pins()["ray"] == "2.60.0"  # `ray[default]==...`: the extras are not part of the name


def _run(task, timeout):
    task.start()
    task.thread.join(timeout)
    assert not task.thread.is_alive()
    return task.snapshot()


@pytest.mark.slow
def test_real_install_then_a_quick_no_op_then_a_pip_failure(tmp_path):
    target = str(tmp_path / "backend")
    # No GPU here, and no network but PyPI: the CPU wheel pip finds on the default indexes.
    source = torch_source("Linux", "x86_64", None, override="pypi")
    log = str(tmp_path / "install.log")
    snap = _run(Task("install", lambda t: install_backend(t, target, source=source), log), 1500)
    assert snap["state"] == DONE, (snap["error"], open(log).read()[-3000:])
    python = venv_python(target)
    assert python and is_complete(target, source=source, base_python=sys.executable)
    with open(log) as fh:
        text = fh.read()
    assert "--progress-bar raw" in text and "Successfully installed" in text
    weights = tmp_path / "weights"
    weights.mkdir()
    check = subprocess.run([python, "-m", "chromm_addon", "weights", "check", str(weights)],
                           capture_output=True, text=True, env=backend_env(), timeout=300)
    assert check.returncode == 2 and "pi3x      MISSING" in check.stdout, check.stderr
    assert "error: " in check.stderr and "Traceback" not in check.stderr

    log2 = str(tmp_path / "again.log")
    again = _run(Task("install", lambda t: install_backend(t, target, source=source), log2), 120)
    assert again["state"] == DONE and again["stage"] == "already installed"
    with open(log2) as fh:
        assert "$ " not in fh.read()  # no pip, no venv: only the installed versions were read

    bad = tmp_path / "requirements.txt"
    bad.write_text(open(REQUIREMENTS).read() + "chromm-no-such-package==0.0.1\n")
    failed = _run(Task("install", lambda t: install_backend(t, target, requirements=str(bad),
                                                            source=source)), 900)
    assert failed["state"] == FAILED and failed["error"].startswith("pip failed: ERROR:")
    assert "chromm-no-such-package" in failed["error"] and "\n" not in failed["error"]
    assert venv_python(target) == python  # the working environment is still there
