"""`reconstruct --blend` stopped from outside while its child `build` writes: SIGTERM leaves no
staging folder and no output, and the child dies with it; `kill -9` of the parent stops the child
too; an interrupt while the staging folders are made leaves none behind."""

import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from backend_synth import write_clip
from chromm_addon.backend import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs bpy")
needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _children(pid):
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append((int(name), cmd))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _start_until_build(tmp_path, smplx_model_path):
    clip = write_clip(tmp_path / "cam.avi", 10, 10)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "chromm_addon", "reconstruct", clip, "-o", str(out / "t.npz"),
                             "--blend", str(out / "t.blend"), "--tiny-network", "--window", "4", "--quiet",
                             "--smplx", smplx_model_path], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        builds = [pid for pid, cmd in _children(proc.pid) if b"build" in cmd]
        staged = [n for n in os.listdir(out) if n.startswith(".chromm-stage-")]
        if builds and staged:
            return proc, builds[0], out
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the build child never started")


@pytest.mark.slow
@needs_bpy
@needs_proc
def test_sigterm_while_building_leaves_nothing(tmp_path, smplx_model_path):
    proc, child, out = _start_until_build(tmp_path, smplx_model_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "error: terminated"
    assert os.listdir(out) == []
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the build child outlived reconstruct"


@pytest.mark.slow
@needs_bpy
@needs_proc
def test_build_child_stops_when_reconstruct_is_killed(tmp_path, smplx_model_path):
    proc, child, out = _start_until_build(tmp_path, smplx_model_path)
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the build child kept running after its parent was killed"
    # It stopped rather than finishing: no .blend written, not even into the (orphaned) staging folder.
    written = [name for _, _, names in os.walk(out) for name in names if name.endswith(".blend")]
    assert written == []


def test_interrupt_while_staging_leaves_no_folder(tmp_path, monkeypatch):
    """Ctrl-C right after a staging folder was made (here: on making the second) leaves none."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    real_mkdir, made = os.mkdir, []

    def mkdir_then_interrupt(path, mode=0o777):
        real_mkdir(path, mode)
        made.append(path)
        if len(made) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.os, "mkdir", mkdir_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with pipeline._staging([str(tmp_path / "a" / "t.npz"), str(tmp_path / "b" / "v.npz")]):
            pass
    monkeypatch.undo()
    assert len(made) == 2
    assert os.listdir(tmp_path / "a") == [] and os.listdir(tmp_path / "b") == []
