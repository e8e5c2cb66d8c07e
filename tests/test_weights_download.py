"""`weights download`: huggingface_hub against a local hub in the hub's URL layout (hub_server.py)."""

import hashlib
import json
import os
import socket
import subprocess
import sys

import pytest

from chromm_addon.errors import ChrommError
from chromm_addon.network import hub as hubmod
from chromm_addon.network import weights as w
from hub_server import LocalHub

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PI3X = ("yyfz233/Pi3X", "model.safetensors")
MHMR = ("naver/multiHMR_896_L", "multiHMR_896_L.pt")


@pytest.fixture(scope="module")
def payloads():
    return {PI3X: os.urandom(300_000), MHMR: os.urandom(200_000)}


def cli(*args, endpoint, env_extra=None):
    env = dict(os.environ, HF_ENDPOINT=endpoint, PYTHONPATH=ROOT, HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_TOKEN", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "chromm_addon", "weights", "download", *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def cdn_gets(hub):
    return [r for r in hub.requests if r[0] == "cdn" and r[1] == "GET"]


def test_download_both_files_from_the_command_line_then_nothing_to_do(payloads, tmp_path):
    with LocalHub(payloads) as hub:
        proc = cli(str(tmp_path), "--accept-licences", "--json", endpoint=hub.url)
        assert proc.returncode == 0, proc.stderr
        records = [json.loads(line) for line in proc.stdout.splitlines()]
        found = w.find_weight_files(str(tmp_path))
        assert found.pi3x == str(tmp_path / "pi3x" / "model.safetensors")
        assert found.multihmr == str(tmp_path / "multiHMR_896_L.pt")
        with open(found.pi3x, "rb") as fh:
            assert sha(fh.read()) == sha(payloads[PI3X])
        with open(found.multihmr, "rb") as fh:
            assert fh.read() == payloads[MHMR]
        progress = [r for r in records if r["event"] == "progress"]
        assert {r["kind"] for r in progress} == {"pi3x", "multihmr"}
        last = [r for r in progress if r["kind"] == "pi3x"][-1]
        assert last["done"] == last["total"] == len(payloads[PI3X])
        assert records[-1]["event"] == "done"
        manifest = hubmod.read_manifest(str(tmp_path))
        assert manifest["pi3x"]["hash"] == sha(payloads[PI3X])
        assert manifest["multihmr"]["size"] == len(payloads[MHMR])
        assert not [p for p in os.listdir(tmp_path / "pi3x") if p.endswith(".part")]
        # The hash computed while downloading is cached under the final name.
        assert w.sha256_file(found.pi3x) == sha(payloads[PI3X])

        gets = len(cdn_gets(hub))
        again = cli(str(tmp_path), "--accept-licences", endpoint=hub.url)
        assert again.returncode == 0, again.stderr
        assert "already there" in again.stdout
        assert len(cdn_gets(hub)) == gets  # nothing downloaded twice


def test_a_dropped_connection_is_resumed_with_a_range_request(tmp_path):
    # huggingface_hub writes in 10 MB chunks: drop after 15 MB so that a chunk has been written.
    data = os.urandom(24 << 20)
    with LocalHub({PI3X: data}) as hub:
        hub.drop_after = 15 << 20
        seen = []
        paths = hubmod.download_weights(str(tmp_path), ["pi3x"], kinds=["pi3x"],
                                        endpoint=hub.url, progress=seen.append, log=lambda m: None)
        ranges = [r[3] for r in cdn_gets(hub)]
        assert ranges[0] is None and ranges[1] == f"bytes={10 << 20}-", ranges
        with open(paths["pi3x"], "rb") as fh:
            assert sha(fh.read()) == sha(data)
        assert seen[-1]["done"] == len(data)


def test_a_partial_file_from_an_interrupted_run_is_resumed(payloads, tmp_path):
    data = payloads[PI3X]
    part = tmp_path / "pi3x" / f".model.safetensors.{sha(data)[:16]}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:123_456])
    with LocalHub(payloads) as hub:
        lines = []
        hubmod.download_weights(str(tmp_path), ["pi3x"], kinds=["pi3x"], endpoint=hub.url,
                                log=lines.append)
        assert [r[3] for r in cdn_gets(hub)] == ["bytes=123456-"]
    assert "resuming at" in lines[0]
    assert (tmp_path / "pi3x" / "model.safetensors").read_bytes() == data
    assert not part.exists()


def test_a_wrong_hash_leaves_no_file_and_keeps_the_old_one(payloads, tmp_path):
    old = tmp_path / "multiHMR_896_L.pt"
    old.write_bytes(b"an older file the user had")
    with LocalHub(payloads) as hub:
        hub.corrupt = True
        with pytest.raises(ChrommError) as info:
            hubmod.download_weights(str(tmp_path), ["multihmr"], kinds=["multihmr"],
                                    endpoint=hub.url, log=lambda m: None)
    message = str(info.value)
    assert message.startswith("naver/multiHMR_896_L/multiHMR_896_L.pt: ") and "\n" not in message
    assert "differs from the hub's" in message and "download again" in message
    assert old.read_bytes() == b"an older file the user had"
    assert sorted(os.listdir(tmp_path)) == ["multiHMR_896_L.pt"]  # no partial, no manifest


def test_each_licence_must_be_accepted_before_anything_is_fetched(payloads, tmp_path):
    with LocalHub(payloads) as hub:
        proc = cli(str(tmp_path), "--accept", "pi3x", endpoint=hub.url)
        assert proc.returncode == 2
        line = proc.stderr.strip()
        assert line.startswith("error: multiHMR_896_L.pt: its licence is not accepted")
        assert "https://github.com/naver/multi-hmr/blob/main/LICENSE.txt" in line
        assert hub.requests == []
        ok = cli(str(tmp_path), "--accept", "pi3x", "--only", "pi3x", endpoint=hub.url)
        assert ok.returncode == 0, ok.stderr
    assert w.find_weight_files(str(tmp_path)).pi3x and not os.path.exists(tmp_path / "multiHMR_896_L.pt")


def test_online_access_off_goes_nowhere(payloads, tmp_path):
    with LocalHub(payloads) as hub:
        proc = cli(str(tmp_path), "--accept-licences", "--no-online-access", endpoint=hub.url)
        assert proc.returncode == 2
        assert "Allow Online Access" in proc.stderr and proc.stderr.count("\n") == 1
        assert hub.requests == []
    assert not os.listdir(tmp_path)


def test_a_refused_token_and_an_unreachable_hub_are_one_line_each(payloads, tmp_path):
    with LocalHub(payloads, token="hf_right") as hub:
        with pytest.raises(ChrommError, match=r"refused the token \(401\)"):
            hubmod.download_weights(str(tmp_path), ["pi3x"], kinds=["pi3x"], token="hf_wrong",
                                    endpoint=hub.url, log=lambda m: None)
        hubmod.download_weights(str(tmp_path), ["pi3x"], kinds=["pi3x"], token="hf_right",
                                endpoint=hub.url, log=lambda m: None)
        # The token goes to the hub, never to the CDN's signed link.
        assert all(r[4] is None for r in cdn_gets(hub))
        assert any(r[4] == "Bearer hf_right" for r in hub.requests if r[0] == "hub")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(ChrommError, match="cannot reach the hub"):
        hubmod.download_weights(str(tmp_path / "x"), ["pi3x"], kinds=["pi3x"], endpoint=dead,
                                log=lambda m: None)


def test_the_add_on_s_download_task_cancelled_then_resumed(payloads, tmp_path, monkeypatch):
    import time

    from chromm_addon.client.tasks import CANCELLED, DONE
    from chromm_addon.client.weights_download import download_task

    venv = os.path.dirname(os.path.dirname(sys.executable))
    with pytest.raises(ChrommError, match="tick the licence"):
        download_task(venv, str(tmp_path), [])
    with pytest.raises(ChrommError, match="Allow Online Access"):
        download_task(venv, str(tmp_path), ["pi3x"], online_access=False)
    # huggingface_hub writes 10 MB chunks: cancel after the first one, before the last 4 MB.
    data = os.urandom(14 << 20)
    with LocalHub({PI3X: data}, token="hf_secret") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.throttle = 0.02  # about 3 MB/s
        task = download_task(venv, str(tmp_path), ["pi3x"], token="hf_secret",
                             log_path=str(tmp_path / "download.log"))
        deadline = time.monotonic() + 60
        while not (task.snapshot()["fraction"] or 0) > 0.5:
            assert time.monotonic() < deadline and not task.finished, task.snapshot()
            time.sleep(0.05)
        hub.throttle = 0.5  # nearly stalled from here on: the cancel lands mid-file however loaded
        detail = task.snapshot()["detail"]
        assert detail.startswith("Pi3X scene network: ") and " of 14.7 MB" in detail
        task.cancel()
        task.thread.join(30)
        assert task.snapshot()["state"] == CANCELLED
        (part,) = [p for p in os.listdir(tmp_path / "pi3x") if p.endswith(".part")]
        kept = os.path.getsize(tmp_path / "pi3x" / part)
        assert 0 < kept < len(data)
        assert not (tmp_path / "pi3x" / "model.safetensors").exists()

        hub.throttle = 0.0
        again = download_task(venv, str(tmp_path), ["pi3x"], token="hf_secret")
        again.thread.join(60)
        assert again.snapshot()["state"] == DONE, again.snapshot()["error"]
        assert cdn_gets(hub)[-1][3] == f"bytes={kept}-"  # resumed where the first one stopped
    assert (tmp_path / "pi3x" / "model.safetensors").read_bytes() == data
    with open(tmp_path / "download.log") as fh:
        assert "hf_secret" not in fh.read()  # the token went in the environment, not argv
