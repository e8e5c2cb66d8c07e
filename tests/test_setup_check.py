"""The preferences' Check: a background self-test whose findings each name a fix (and its button)."""

import json
import os
import subprocess
import sys
import time

import pytest

from chromm_addon.client.setup_check import check_setup, check_task
from chromm_addon.client.tasks import CANCELLED, DONE
from chromm_addon.network import hub

VENV = os.path.dirname(os.path.dirname(sys.executable))


def wait(task, timeout=300):
    deadline = time.monotonic() + timeout
    while not task.finished:
        assert time.monotonic() < deadline, task.snapshot()
        time.sleep(0.05)
    return task.snapshot()


def test_local_check_runs_in_the_background_and_names_each_fix(tmp_path, smplx_model_path):
    task = check_task(mode="LOCAL", env_path=VENV, weights_dir=str(tmp_path / "weights"),
                      smplx_path=smplx_model_path)
    assert task.thread.is_alive()  # returned at once; the self-test runs in its worker
    snap = wait(task)
    assert snap["state"] == DONE
    by_what = {f.what: f for f in snap["findings"]}
    assert any(w.startswith("Python 3.") for w in by_what)
    assert any(w.startswith("PyTorch 2.13.0") for w in by_what)
    cpu = next(f for f in snap["findings"] if "the CPU-only build" in f.what)
    assert cpu.level == "warning" and cpu.action == "install_backend"
    missing = [f for f in snap["findings"] if "weights missing" in f.what]
    assert len(missing) == 2 and all(f.level == "error" and f.action == "download_weights"
                                     for f in missing)
    assert by_what["SMPL-X: 10475 vertices, 55 joints, neutral"].level == "ok"
    assert not any(f.what.startswith("Ready") for f in snap["findings"])  # no weights, no dry run


def test_weights_with_a_hash_other_than_the_hub_s_are_an_error(tmp_path):
    folder = tmp_path / "weights"
    (folder / "pi3x").mkdir(parents=True)
    (folder / "pi3x" / "model.safetensors").write_bytes(b"\0" * 64)
    (folder / hub.MANIFEST).write_text(json.dumps({"pi3x": {"hash": "ab" * 32, "size": 64}}))
    findings = check_setup("LOCAL", VENV, str(folder), "", extra_args=())
    bad = next(f for f in findings if "model.safetensors" in f.what)
    assert bad.level == "error" and "differs from the hub's" in bad.what
    assert bad.action == "download_weights"
    smplx = next(f for f in findings if "SMPL-X" in f.what)
    assert smplx.level == "warning" and smplx.action == "choose_smplx"
    assert "smpl-x.is.tue.mpg.de" in smplx.fix


@pytest.mark.slow
def test_dry_run_of_the_network_ends_with_ready(tmp_path, smplx_model_path):
    findings = check_setup("LOCAL", VENV, "", smplx_model_path, extra_args=["--tiny-network"])
    assert all(f.level != "error" for f in findings), findings
    last = findings[-1].what
    assert last.startswith("Ready: CPU (tiny test network), about ")
    assert last.split("about ")[1].split(" s per 100 timesteps at 4 views")[0].isdigit()


def test_an_environment_without_torch_is_not_ok(tmp_path):
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    findings = check_setup("LOCAL", str(env), "", "")
    errors = [f for f in findings if f.level == "error"]
    assert errors and errors[0].action == "install_backend", findings
    assert "Install Backend" in errors[0].fix
    assert not any(f.what.startswith("Ready") for f in findings)


def test_no_backend_and_an_unreachable_service(tmp_path):
    findings = check_setup("LOCAL", str(tmp_path / "nope"), "", str(tmp_path / "SMPLX_NEUTRAL.npz"))
    assert findings[0].level == "error" and findings[0].action == "install_backend"
    assert "not found" in findings[-1].what and findings[-1].action == "choose_smplx"
    remote, smplx = check_setup("REMOTE", url="http://127.0.0.1:9", token="t" * 32)
    assert remote.level == "error" and "unreachable" in remote.what and "URL" in remote.fix
    assert smplx.level == "warning" and "mannequins" in smplx.what


def test_cancel_stops_the_self_test(tmp_path):
    task = check_task(mode="LOCAL", env_path=VENV, weights_dir="", smplx_path="",
                      extra_args=["--tiny-network"])
    deadline = time.monotonic() + 60
    while not task.findings and time.monotonic() < deadline:  # the child process is running
        time.sleep(0.05)
    task.cancel()
    snap = wait(task, timeout=30)
    assert snap["state"] == CANCELLED
    assert not any(f.what.startswith("Ready") for f in snap["findings"])
