"""The service under faults: links inside and swapped paths, what errors and takes show, uploads
written once, and what a killed or stopped service leaves in its work dir. A real `serve` process."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import httpx
import numpy as np
import pytest

from backend_synth import index_frame, write_clip
from chromm_addon.io.take import read_take
from test_server import ROOT, start_service, stop_service, wait_state

MiB = 1 << 20


def client_for(hello):
    return httpx.Client(base_url=hello["url"], headers={"Authorization": f"Bearer {hello['token']}"}, timeout=30)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    allowed = tmp_path_factory.mktemp("allowed")
    outside = tmp_path_factory.mktemp("outside")
    write_clip(allowed / "a.avi", 16, 16)
    write_clip(allowed / "long.avi", 900, 30)
    (outside / "secret.txt").write_text("not for strangers\n" * 50)
    imgs, linked = allowed / "imgs", allowed / "linked"
    imgs.mkdir()
    linked.mkdir()
    for i in range(4):
        cv2.imwrite(str(outside / f"{i:03d}.png"), index_frame(i, 32, 24))
        cv2.imwrite(str(imgs / f"{i:03d}.png"), index_frame(i, 32, 24))
        os.symlink(outside / f"{i:03d}.png", linked / f"{i:03d}.png")
    return allowed, outside


@pytest.fixture(scope="module")
def service(folders):
    proc, hello = start_service("--allow-dir", str(folders[0]), "--tiny-network", "--max-queue", "4",
                                "--max-upload-mb", "16")
    client = client_for(hello)
    yield proc, client
    client.close()
    stop_service(proc)


def test_links_inside_an_image_folder_are_refused(service, folders):
    _, client = service
    allowed, _ = folders
    r = client.post("/jobs", json={"clips": [str(allowed / "linked")]})
    assert r.status_code == 400, r.text
    assert r.json()["detail"] == f"{allowed / 'linked' / '000.png'}: a link; this service reads no links inside image folders"
    r = client.post("/jobs", json={"clips": [str(allowed / "imgs")], "end": 0.05})
    assert r.status_code == 202, r.text
    assert wait_state(client, r.json()["id"], ("done", "failed"))[0]["state"] == "done"


@pytest.mark.slow
def test_a_clip_swapped_for_a_link_after_submission_is_not_followed(service, folders, tmp_path):
    _, client = service
    allowed, outside = folders
    clip = tmp_path / "swap.avi"
    write_clip(allowed / "swap.avi", 16, 16)
    busy = client.post("/jobs", json={"clips": [str(allowed / "long.avi")], "window": 4}).json()
    wait_state(client, busy["id"], ("running",))
    r = client.post("/jobs", json={"clips": [str(allowed / "swap.avi")], "end": 0.2})
    assert r.status_code == 202 and r.json()["state"] == "queued", r.text
    os.replace(allowed / "swap.avi", clip)  # moved away, and a link to an outside file put in its place
    os.symlink(outside / "secret.txt", allowed / "swap.avi")
    client.post(f"/jobs/{busy['id']}/cancel")
    status, _ = wait_state(client, r.json()["id"], ("done", "failed", "cancelled"))
    assert status["state"] == "done", status  # read through the descriptor opened at submission
    (tmp_path / "t.npz").write_bytes(client.get(f"/jobs/{status['id']}/take").content)
    take = read_take(str(tmp_path / "t.npz"))
    assert [s["path"] for s in take.meta["sources"]] == [str(allowed / "swap.avi")]
    # Submitted now, the link is refused: it resolves outside the allowed folder.
    r = client.post("/jobs", json={"clips": [str(allowed / "swap.avi")]})
    assert r.status_code == 403 and "outside the folders" in r.json()["detail"]


def _wchar(pid):
    with open(f"/proc/{pid}/io") as fh:
        return dict(line.split(": ") for line in fh.read().splitlines())


def test_uploads_are_written_once_and_errors_show_no_server_path(service, folders, tmp_path):
    proc, client = service
    blob = os.urandom(6 * MiB)
    before = int(_wchar(proc.pid)["wchar"])
    r = client.post("/jobs/upload", files=[("files", ("holiday clip.mp4", blob, "video/mp4"))])
    written = int(_wchar(proc.pid)["wchar"]) - before
    assert r.status_code == 400 and r.json()["detail"].startswith("holiday clip.mp4: not a video"), r.text
    assert len(blob) <= written < 1.3 * len(blob), written  # once into the job folder, not spooled first

    # A clip whose frames end long before its header says: the job fails while it runs, and its
    # error names the uploaded file, not where the service keeps it.
    data = _mkv_bytes(tmp_path / "cut.mkv", 40, 10)  # 4 s in its header, under 1 s of frames in the file
    r = client.post("/jobs/upload", files=[("files", ("cut.mkv", data[: len(data) // 5], "video/x-matroska"))],
                    data={"options": json.dumps({"start": 3.0})})
    assert r.status_code == 202, r.text
    status, _ = wait_state(client, r.json()["id"], ("done", "failed", "cancelled"))
    assert status["state"] == "failed", status
    assert status["error"].startswith("cut.mkv: "), status["error"]
    assert "chromm-service-" not in status["error"] and "uploads" not in status["error"], status["error"]


def _mkv_bytes(path, frames, fps):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


@pytest.mark.slow
def test_take_sources_name_the_uploaded_files(service, folders, tmp_path):
    _, client = service
    allowed, _ = folders
    data = (allowed / "a.avi").read_bytes()
    files = [("files", ("left cam.avi", data, "video/x-msvideo")),
             ("files", ("../../right.avi", data, "video/x-msvideo"))]
    r = client.post("/jobs/upload", files=files, data={"options": json.dumps({"end": 0.2})})
    assert r.status_code == 202, r.text
    assert r.json()["clips"] == ["left cam.avi", "right.avi"]
    status, _ = wait_state(client, r.json()["id"], ("done", "failed"))
    assert status["state"] == "done", status
    (tmp_path / "t.npz").write_bytes(client.get(f"/jobs/{status['id']}/take").content)
    take = read_take(str(tmp_path / "t.npz"))
    assert [s["path"] for s in take.meta["sources"]] == ["left cam.avi", "right.avi"]
    assert take.meta["options"]["clips"] == ["left cam.avi", "right.avi"]  # not where the service kept them


def _job_folders(work):
    return sorted(n for n in os.listdir(work) if len(n) == 16 and os.path.isdir(os.path.join(work, n)))


@pytest.mark.slow
def test_restart_after_kill_and_stop_leave_only_finished_results(folders, tmp_path):
    allowed, _ = folders
    work = tmp_path / "work"
    args = ("--allow-dir", str(allowed), "--tiny-network", "--work-dir", str(work))
    proc, hello = start_service(*args)
    try:
        client = client_for(hello)
        done = client.post("/jobs", json={"clips": [str(allowed / "a.avi")], "end": 0.1}).json()
        assert wait_state(client, done["id"], ("done", "failed"))[0]["state"] == "done"
        running = client.post("/jobs", json={"clips": [str(allowed / "long.avi")], "window": 4}).json()
        wait_state(client, running["id"], ("running",))
        queued = client.post("/jobs", json={"clips": [str(allowed / "a.avi")]}).json()
        files = [("files", ("x.avi", (allowed / "a.avi").read_bytes(), "video/x-msvideo"))]
        uploaded = client.post("/jobs/upload", files=files).json()
        assert _job_folders(work) == sorted([done["id"], running["id"], queued["id"], uploaded["id"]])
        # Another service on the same work dir is refused while this one lives.
        other = subprocess.run([sys.executable, "-m", "chromm_addon", "serve", "--port", "0", *args],
                               capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
        assert other.returncode == 2 and "another running service uses this folder" in other.stderr
        client.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert len(_job_folders(work)) == 4  # what the dead service left

    proc, hello = start_service(*args)
    try:
        client = client_for(hello)
        jobs = client.get("/jobs").json()
        assert [j["id"] for j in jobs] == [done["id"]] and jobs[0]["state"] == "done"
        assert jobs[0]["clips"] == ["a.avi"]
        take = client.get(f"/jobs/{done['id']}/take")
        assert take.status_code == 200 and take.content[:2] == b"PK"
        assert _job_folders(work) == [done["id"]]
        again = client.post("/jobs", json={"clips": [str(allowed / "long.avi")], "window": 4}).json()
        wait_state(client, again["id"], ("running",))
        client.close()
    finally:
        proc.terminate()  # SIGTERM: the unfinished job's folder goes, the finished result stays
        proc.wait(90)
    assert proc.returncode == 0
    assert _job_folders(work) == [done["id"]]
    assert sorted(os.listdir(work / done["id"])) == ["job.json", "take.npz", "views.npz"]
