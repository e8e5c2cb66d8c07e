"""The add-on's job client and state machine against a real local backend process (tiny network,
synthetic clips): submit, progress, download, cancel, a refused token, and a dead backend."""

import os
import sys
import time

import pytest

from backend_synth import write_clip
from chromm_addon.client.job import (APPLIED, CANCELLED, FAILED, READY, JobWorker,
                                     Reconstruction)
from chromm_addon.client.local_backend import LocalBackend, backend_python
from chromm_addon.client.service import ServiceClient, ServiceError
from chromm_addon.errors import ChrommError

VENV = os.path.dirname(os.path.dirname(sys.executable))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return [write_clip(str(folder / f"view{v}.avi"), num_frames=12, fps=12.0) for v in range(2)]


@pytest.fixture(scope="module")
def backend(clips):
    service = LocalBackend(VENV, allow_dirs=[os.path.dirname(clips[0])], device="cpu",
                           extra_args=["--tiny-network"])
    url, token = service.start()
    yield service
    service.stop()
    assert not service.alive()


def _run(job, timeout=120):
    deadline = time.monotonic() + timeout
    seen = set()
    while job.step():
        seen.add(job.snapshot()["state"])
        assert time.monotonic() < deadline, job.snapshot()
        time.sleep(0.05)
    return seen


def test_reconstruction_runs_to_a_downloaded_take(backend, clips, tmp_path):
    from chromm_addon.io.take import read_take

    client = ServiceClient(backend.url, backend.token)
    assert client.health()["status"] == "ok"
    job = Reconstruction(lambda: client, clips, str(tmp_path), options={"fps": 6.0})
    _run(job)
    snap = job.snapshot()
    assert snap["state"] == READY, snap
    take = read_take(snap["take_path"])
    assert take.num_views == 2 and take.fps == pytest.approx(6.0)
    job.mark_applied()
    assert job.snapshot()["state"] == APPLIED


def test_worker_thread_and_cancel(backend, clips, tmp_path):
    client = ServiceClient(backend.url, backend.token)
    job = Reconstruction(lambda: client, clips, str(tmp_path))
    job.cancel()  # before submission: nothing reaches the service
    worker = JobWorker(job, interval=0.01)
    worker.start()
    worker.join(30)
    assert job.snapshot()["state"] == CANCELLED and job.job_id is None

    job = Reconstruction(lambda: client, clips, str(tmp_path))
    job.step()  # submitted
    job.cancel()
    _run(job)
    assert job.snapshot()["state"] == CANCELLED
    assert client.status(job.job_id)["state"] in ("cancelled", "done")  # a tiny job may win


def test_wrong_token_and_bad_clip_fail_with_a_message(backend, clips, tmp_path):
    bad = ServiceClient(backend.url, "x" * 32)
    with pytest.raises(ServiceError, match="refused the token"):
        bad.health()
    client = ServiceClient(backend.url, backend.token)
    job = Reconstruction(lambda: client, [str(tmp_path / "missing.mp4")], str(tmp_path))
    _run(job)
    snap = job.snapshot()
    assert snap["state"] == FAILED and "missing.mp4" in snap["error"]


def test_unreachable_backend_is_reported_not_raised(tmp_path, clips):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ServiceClient(f"http://127.0.0.1:{port}", "t" * 32, timeout=1.0)
    job = Reconstruction(lambda: client, clips, str(tmp_path), max_unreachable=2)
    _run(job)
    snap = job.snapshot()
    assert snap["state"] == FAILED and "unreachable" in snap["error"]


def test_backend_environment_errors(tmp_path):
    with pytest.raises(ChrommError, match="no backend environment"):
        backend_python("")
    with pytest.raises(ChrommError, match="not found"):
        backend_python(str(tmp_path / "nope"))
    with pytest.raises(ChrommError, match="no Python interpreter"):
        backend_python(str(tmp_path))
    assert backend_python(VENV).startswith(VENV)


def _gone(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return True


def _work_dir_of(pid):
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith(".chromm-service.lock"):
            return os.path.dirname(target)
    return None


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_service_stops_when_its_parent_is_killed(tmp_path):
    """Blender killed with -9: the service it started stops and removes its work folder; the
    add-on leaves no temporary folder of its own either."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    private_tmp = tmp_path / "tmp"  # the add-on's and the service's temporary folders go here
    private_tmp.mkdir()
    code = (f"import sys, time\nsys.path.insert(0, {root!r})\n"
            "from chromm_addon.client.local_backend import LocalBackend\n"
            f"b = LocalBackend({VENV!r}, device='cpu', extra_args=['--tiny-network'])\n"
            "url, token = b.start()\nprint(b.process.pid, url, flush=True)\ntime.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, TMPDIR=str(private_tmp)))
    try:
        pid = int(parent.stdout.readline().split()[0])
        deadline = time.monotonic() + 30
        while _work_dir_of(pid) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        work = _work_dir_of(pid)
        assert work and os.path.isdir(work) and os.path.dirname(work) == str(private_tmp)
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 30
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid), "the service outlived the process that started it"
    assert not os.path.exists(work)
    assert os.listdir(private_tmp) == []  # nothing left behind, by the service or the add-on


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """A service as on a GPU server: a token, no --allow-dir (it takes uploads only)."""
    from test_server import start_service, stop_service

    token = "remote-token-" + "x" * 20
    proc, hello = start_service("--tiny-network", env_extra={"CHROMM_SERVICE_TOKEN": token})
    yield ServiceClient(hello["url"], token)
    stop_service(proc)


@pytest.mark.slow
def test_remote_service_without_allow_dir_gets_the_clips_uploaded_to_a_built_scene(remote, clips,
                                                                                 tmp_path):
    import bpy

    from chromm_addon.blender.results import apply_take

    info = remote.version()
    assert info["accepts_paths"] is False and info["device"] == "cpu"
    with pytest.raises(ServiceError, match="takes uploads only"):
        remote.submit_paths(clips)
    stages = []
    job = Reconstruction(lambda: remote, clips, str(tmp_path), options={"fps": 6.0})
    real_progress = job._upload_progress

    def spy(sent, total):
        real_progress(sent, total)
        stages.append((sent, total, job.snapshot()["stage"]))
    job._upload_progress = spy
    _run(job)
    snap = job.snapshot()
    assert snap["state"] == READY, snap
    total = sum(os.path.getsize(c) for c in clips)
    assert stages[-1][0] == stages[-1][1] > total  # the clips plus the multipart framing
    assert any(s.startswith("uploading clips") for _, _, s in stages)
    # The service names uploaded clips by their file name (paths would name its own folders).
    assert remote.status(job.job_id)["clips"] == [os.path.basename(c) for c in clips]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    collection, summary = apply_take(scene, snap["take_path"], "remote_take",
                                     sources=[{"path": c, "start_time": 0.0} for c in clips])
    cams = [o for o in collection.all_objects if o.type == "CAMERA"]
    assert len(cams) == 2 and "2 views" in summary


def test_cancel_during_an_upload_sends_no_job(remote, clips, tmp_path):
    job = Reconstruction(lambda: remote, clips, str(tmp_path))
    before = len(remote.jobs())
    real = job._upload_progress

    def cancel_midway(sent, total):
        if sent > total // 3:
            job.cancel()
        real(sent, total)
    job._upload_progress = cancel_midway
    _run(job)
    assert job.snapshot()["state"] == CANCELLED and job.job_id is None
    assert len(remote.jobs()) == before


def test_a_path_outside_the_allowed_folders_is_uploaded_instead(backend, tmp_path):
    elsewhere = [write_clip(str(tmp_path / f"cam{v}.avi"), num_frames=12, fps=12.0) for v in range(2)]
    client = ServiceClient(backend.url, backend.token)
    assert client.version()["accepts_paths"] and client.is_loopback()
    sent = []
    status = client.submit(elsewhere, progress=lambda s, t: sent.append((s, t)))
    assert sent and sent[-1][0] == sent[-1][1]  # 403 for the paths, then uploaded
    assert status["clips"] == ["cam0.avi", "cam1.avi"]
    in_allowed = client.submit([os.path.join(backend.allow_dirs[0], "view0.avi")],
                               progress=lambda s, t: pytest.fail("uploaded a readable path"))
    assert in_allowed["clips"][0].endswith("view0.avi")


def test_check_against_the_remote_service_names_its_device(remote, smplx_model_path):
    from chromm_addon.client.setup_check import check_setup

    deadline = time.monotonic() + 60
    while remote.health()["network"] != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    service, ready, smplx = check_setup("REMOTE", url=remote.url, token=remote.token,
                                        smplx_path=smplx_model_path)
    assert service.level == "ok" and "on cpu" in service.what and "uploaded" in service.what
    assert ready.level == "ok" and ready.what == f"Ready: cpu at {remote.url}"
    assert smplx.what == "SMPL-X: 10475 vertices, 55 joints, neutral"
    with pytest.raises(ServiceError, match="refused the token"):
        ServiceClient(remote.url, "y" * 32).version()
