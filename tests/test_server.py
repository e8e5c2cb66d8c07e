"""The service as a real process on a free port, driven over HTTP with httpx."""

import json
import os
import queue
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from backend_synth import write_clip
from chromm_addon.io.take import read_take
from chromm_addon.io.views import read_views

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_service(*args, env_extra=None):
    """Start `serve` and return (process, handshake) once it printed its first line."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env_extra or {}))
    proc = subprocess.Popen([sys.executable, "-m", "chromm_addon", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=60)
    except queue.Empty:
        proc.kill()
        raise AssertionError("the service printed no handshake line")
    if not line:
        proc.wait(10)
        raise AssertionError(f"the service did not start: {proc.stderr.read()}")
    return proc, json.loads(line)


def stop_service(proc):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def allowed_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("allowed")
    write_clip(folder / "a.avi", 16, 16)
    write_clip(folder / "b.avi", 12, 12, width=48, height=40)
    write_clip(folder / "long.avi", 900, 30)
    (folder / "notes.mp4").write_text("not a video\n" * 20)
    return folder


@pytest.fixture(scope="module")
def service(allowed_dir, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("svc") / "handshake.json"
    proc, hello = start_service("--allow-dir", str(allowed_dir), "--tiny-network", "--max-queue", "2",
                                "--token-file", str(token_file))
    with open(token_file) as fh:
        from_file = json.load(fh)
    assert from_file["token"] == hello["token"] and from_file["url"] == hello["url"]
    assert os.stat(token_file).st_mode & 0o077 == 0
    client = httpx.Client(base_url=hello["url"], headers={"Authorization": f"Bearer {hello['token']}"},
                          timeout=30)
    yield client, hello
    client.close()
    stop_service(proc)
    assert not token_file.exists()


def wait_state(client, job_id, states, timeout=120):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = client.get(f"/jobs/{job_id}").json()
        seen.append(status)
        if status["state"] in states:
            return status, seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {seen[-1]['state']} after {timeout} s")


def test_handshake_and_loopback(service):
    _, hello = service
    assert hello["host"] == "127.0.0.1" and hello["loopback"] is True
    assert len(hello["token"]) >= 32


def test_every_route_needs_the_token(service):
    client, hello = service
    bare = httpx.Client(base_url=hello["url"], timeout=10)
    for method, path in (("GET", "/health"), ("GET", "/version"), ("GET", "/jobs"), ("GET", "/openapi.json"),
                         ("POST", "/jobs"), ("GET", "/jobs/x"), ("POST", "/jobs/x/cancel"),
                         ("DELETE", "/jobs/x"), ("GET", "/jobs/x/take"), ("POST", "/jobs/upload")):
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"},
                        {"Authorization": f"Basic {hello['token']}"}):
            r = bare.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.json()["detail"] == "missing or wrong bearer token"
            assert r.headers["www-authenticate"] == "Bearer"
    bare.close()
    assert client.get("/health").json()["status"] == "ok"
    version = client.get("/version").json()
    assert version["api"] == 1 and version["network"] == "tiny" and version["accepts_paths"] is True
    assert version["device"] == "cpu" and version["gpu"] is None  # what runs, not "auto"


def test_bad_inputs_are_4xx_with_a_detail(service, allowed_dir, tmp_path):
    client, _ = service
    outside = write_clip(tmp_path / "outside.avi", 8, 8)
    cases = [
        ({"clips": [outside]}, 403, "outside the folders"),
        ({"clips": [str(allowed_dir / ".." / os.path.basename(str(tmp_path)) / "outside.avi")]}, 403, "outside"),
        ({"clips": ["a.avi"]}, 403, "absolute path"),
        ({"clips": [str(allowed_dir / "missing.avi")]}, 400, "no such file"),
        ({"clips": [str(allowed_dir / "notes.mp4")]}, 400, "not a video"),
        ({"clips": [str(allowed_dir / "a.avi"), str(allowed_dir / "b.avi")], "offsets": ["0s", "5s"]},
         400, "do not overlap"),
        ({"clips": [str(allowed_dir / "a.avi")], "offsets": ["1.5x"]}, 400, "offset"),
        ({"clips": []}, 422, "clips"),
        ({"clips": [str(allowed_dir / "a.avi")], "fps": -3}, 422, "fps"),
        ({"clip": "a.avi"}, 422, "clips"),
    ]
    for body, code, words in cases:
        r = client.post("/jobs", json=body)
        assert r.status_code == code, (body, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and words in detail, (body, detail)
    r = client.post("/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    assert client.get("/jobs/nope").status_code == 404
    assert client.post("/jobs/nope/cancel").status_code == 404
    assert client.get("/jobs/nope/take").status_code == 404
    r = client.post("/jobs/upload", files=[("files", ("x.mp4", b"garbage bytes" * 10, "video/mp4"))])
    assert r.status_code == 400 and r.json()["detail"].startswith("x.mp4: not a video")
    r = client.post("/jobs/upload", files=[("files", ("x.avi", b"", "video/x-msvideo"))])
    assert r.status_code == 400 and r.json()["detail"] == "x.avi: the uploaded file is empty"
    r = client.post("/jobs/upload", files=[("files", ("a.avi", b"x", "video/x-msvideo"))], data={"options": "[1"})
    assert r.status_code == 422 and r.json()["detail"].startswith("options")


@pytest.mark.slow
def test_submit_by_path_progress_and_download(service, allowed_dir, tmp_path):
    client, _ = service
    r = client.post("/jobs", json={"clips": [str(allowed_dir / "a.avi"), str(allowed_dir / "b.avi")],
                                   "offsets": ["0s", "2f"], "window": 3, "end": 0.25})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] in ("queued", "running") and job["clips"] == ["a.avi", "b.avi"]
    status, seen = wait_state(client, job["id"], ("done", "failed", "cancelled"))
    assert status["state"] == "done", status
    assert status["fraction"] == 1.0 and status["timesteps"] > 0
    fractions = [s["fraction"] for s in seen]
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert any(s["id"] == job["id"] for s in client.get("/jobs").json())
    take = client.get(f"/jobs/{job['id']}/take")
    assert take.status_code == 200
    (tmp_path / "take.npz").write_bytes(take.content)
    loaded = read_take(str(tmp_path / "take.npz"))
    assert loaded.num_views == 2 and loaded.num_frames == status["timesteps"]
    views = client.get(f"/jobs/{job['id']}/views")
    (tmp_path / "views.npz").write_bytes(views.content)
    assert read_views(str(tmp_path / "views.npz")).meta["views"] == ["a", "b"]
    assert client.delete(f"/jobs/{job['id']}").json() == {"id": job["id"], "deleted": True}
    assert client.get(f"/jobs/{job['id']}").status_code == 404


def test_known_cameras_inline_in_the_job(service, allowed_dir, tmp_path):
    client, _ = service
    pose = np.eye(4)
    pose[:3, 3] = [2.0, 0.0, 0.0]
    cameras = {"format": "chromm.cameras", "version": 1, "cameras": [
        {"clip": "a", "image_size": [128, 96], "fx": 100.0, "fy": 100.0, "cx": 63.5, "cy": 47.5,
         "distortion": {"model": "fisheye", "k1": 0.05}, "camera_to_world": np.eye(4).tolist()},
        {"clip": "b", "camera_to_world": pose.tolist()}]}
    clips = [str(allowed_dir / "a.avi"), str(allowed_dir / "b.avi")]
    bad = dict(cameras, cameras=cameras["cameras"][:1])
    r = client.post("/jobs", json={"clips": clips, "cameras": bad})
    assert r.status_code == 400 and "clip 'b': no camera given" in r.json()["detail"], r.text
    r = client.post("/jobs", json={"clips": clips, "cameras": cameras, "end": 0.2})
    assert r.status_code == 202, r.text
    status, _ = wait_state(client, r.json()["id"], ("done", "failed", "cancelled"))
    assert status["state"] == "done", status
    (tmp_path / "k.npz").write_bytes(client.get(f"/jobs/{status['id']}/take").content)
    take = read_take(str(tmp_path / "k.npz"))
    known = take.meta["known_cameras"]
    assert known["poses"] == [True, True] and known["undistorted"] == [True, False]
    np.testing.assert_allclose(take.cam_c2w[1, 0], pose, atol=1e-5)
    np.testing.assert_allclose(take.cam_K[0, 0], known["undistorted_K"][0], atol=1e-4)
    assert take.meta["options"]["cameras"]["cameras"][1]["clip"] == "b"


@pytest.mark.slow
def test_upload_job(service, allowed_dir, tmp_path):
    client, _ = service
    files = [("files", (name, (allowed_dir / name).read_bytes(), "video/x-msvideo")) for name in ("a.avi", "b.avi")]
    # Submitted by a client that then goes away: the job lives on in the service.
    with httpx.Client(base_url=str(client.base_url), headers=dict(client.headers), timeout=30) as gone:
        r = gone.post("/jobs/upload", files=files, data={"options": json.dumps({"fps": 8, "end": 0.25})})
    assert r.status_code == 202, r.text
    status, _ = wait_state(client, r.json()["id"], ("done", "failed", "cancelled"))
    assert status["state"] == "done", status
    (tmp_path / "t.npz").write_bytes(client.get(f"/jobs/{status['id']}/take").content)
    assert read_take(str(tmp_path / "t.npz")).fps == 8


@pytest.mark.slow
def test_cancel_running_and_queued_jobs_and_queue_limit(service, allowed_dir):
    client, _ = service
    body = {"clips": [str(allowed_dir / "long.avi")], "window": 4}
    running = client.post("/jobs", json=body).json()
    wait_state(client, running["id"], ("running",))
    queued = [client.post("/jobs", json=body) for _ in range(2)]
    assert [r.status_code for r in queued] == [202, 202]
    full = client.post("/jobs", json=body)
    assert full.status_code == 429 and "queue is full" in full.json()["detail"]
    # A queued job is cancelled at once.
    for r in queued:
        cancelled = client.post(f"/jobs/{r.json()['id']}/cancel").json()
        assert cancelled["state"] == "cancelled"
    assert client.get("/health").json()["queued"] == 0
    client.post(f"/jobs/{running['id']}/cancel")
    status, _ = wait_state(client, running["id"], ("done", "failed", "cancelled"))
    assert status["state"] == "cancelled", status
    r = client.get(f"/jobs/{running['id']}/take")
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    # The worker is free again: a small job still runs.
    again = client.post("/jobs", json={"clips": [str(allowed_dir / "a.avi")], "end": 0.1}).json()
    assert wait_state(client, again["id"], ("done", "failed"))[0]["state"] == "done"


def test_refuses_to_listen_off_loopback_without_token():
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("CHROMM_SERVICE_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "chromm_addon", "serve", "--host", "0.0.0.0", "--port", "0",
                           "--tiny-network"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --host 0.0.0.0") and "--token" in done.stderr
    done = subprocess.run([sys.executable, "-m", "chromm_addon", "serve", "--port", "0", "--token", "short",
                           "--tiny-network"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and "at least 16" in done.stderr


# -- property-based check against the OpenAPI schema -------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def resolve(schema, root):
    while "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def conforms(value, schema, root):
    """A small JSON-schema check (type, required, properties, items, anyOf, $ref)."""
    schema = resolve(schema, root)
    if "anyOf" in schema:
        return any(conforms(value, s, root) for s in schema["anyOf"])
    kind = schema.get("type")
    checks = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "null": lambda v: v is None, "array": lambda v: isinstance(v, list),
              "object": lambda v: isinstance(v, dict)}
    if kind is not None and not checks[kind](value):
        return False
    if kind == "object":
        if any(k not in value for k in schema.get("required", ())):
            return False
        return all(conforms(value[k], s, root) for k, s in schema.get("properties", {}).items() if k in value)
    if kind == "array" and "items" in schema:
        return all(conforms(v, schema["items"], root) for v in value)
    return True


def value_for(schema, root):
    """Values of roughly the right type, mixed with arbitrary JSON."""
    schema = resolve(schema, root)
    if "anyOf" in schema:
        return st.one_of([value_for(s, root) for s in schema["anyOf"]])
    kind = schema.get("type")
    typed = {"string": st.text(max_size=30) | st.sampled_from(["/", "/etc/passwd", "../a.avi", "1.5s", "12f"]),
             "integer": st.integers(-5, 10**6), "number": st.floats(-1e3, 1e3, allow_nan=False),
             "boolean": st.booleans(), "null": st.none()}.get(kind)
    if kind == "array":
        typed = st.lists(value_for(schema.get("items", {}), root), max_size=4)
    if kind == "object":
        props = schema.get("properties", {})
        typed = st.fixed_dictionaries({}, optional={k: value_for(s, root) for k, s in props.items()})
    return JSON_VALUES if typed is None else st.one_of(typed, typed, JSON_VALUES)


@pytest.fixture(scope="module")
def openapi(service):
    r = service[0].get("/openapi.json")
    assert r.status_code == 200
    return r.json()


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_property_every_endpoint_answers_by_its_schema(service, openapi, data):
    client, _ = service
    schema = openapi
    operations = sorted((path, method) for path, item in schema["paths"].items() for method in item)
    path, method = data.draw(st.sampled_from(operations), label="operation")
    op = schema["paths"][path][method]
    url = path
    for param in op.get("parameters", ()):
        if param["in"] == "path":
            value = data.draw(st.text(alphabet="abcdef0123456789-_.~", min_size=1, max_size=20).filter(lambda x: x.strip(".")), label="id")
            url = url.replace("{" + param["name"] + "}", value)
    kwargs = {}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        kwargs["json"] = data.draw(st.one_of(value_for(content["application/json"]["schema"], schema),
                                             JSON_VALUES), label="body")
    elif "multipart/form-data" in content:
        files = data.draw(st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=64)), max_size=3))
        options = data.draw(st.text(max_size=30) | JSON_VALUES.map(json.dumps), label="options")
        kwargs["files"] = [("files", (name or "x", blob, "application/octet-stream")) for name, blob in files]
        kwargs["data"] = {"options": options}
    r = client.request(method.upper(), url, **kwargs)
    assert r.status_code < 500, (method, url, kwargs, r.text)
    declared = op["responses"].get(str(r.status_code))
    if r.status_code >= 400:
        assert isinstance(r.json().get("detail"), str), r.text
    elif declared and "application/json" in declared.get("content", {}):
        body_schema = declared["content"]["application/json"]["schema"]
        assert conforms(r.json(), body_schema, schema), (url, r.text)
    assert r.status_code in {int(c) for c in op["responses"] if c.isdigit()} | {400, 401, 403, 404, 409, 410,
                                                                                 413, 422, 429}
