"""The batch on a real local Ray instance (started here, 2 CPUs, small object store), tiny network.

One Ray session and one batch run for the module: three takes (one long enough for several
windows, one with known cameras and a lens to undistort) and one with a broken clip, with a worker actor killed while it holds a window; then
the same batch again. Compared with the same takes run one by one without Ray.
"""

import os
import threading

import pytest

from chromm_addon.backend.batch import Batch, LocalExecutor, parse_manifest
from test_batch import RUNNER_OPTIONS, assert_same_outputs, make_takes, write_rig

pytestmark = pytest.mark.slow

LENGTHS = {"short": 4, "long": 14, "medium": 7}   # "long": 5 windows of 4 timesteps at 10 fps
DEFAULTS = {"image_fps": 10, "window": 4}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    from chromm_addon.backend.cluster import connect

    started = not ray.is_initialized()
    connect("local", num_cpus=2, object_store_memory=80 << 20, include_dashboard=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def executor(ray_session):
    from chromm_addon.backend.cluster import RayExecutor

    # Two CPU workers of half a CPU each, readers and fusion tasks half a CPU each.
    ex = RayExecutor(RUNNER_OPTIONS, workers=2, gpus_per_worker=0, cpus_per_worker=0.5, cpus_per_task=0.5)
    yield ex
    ex.shutdown()


@pytest.fixture(scope="module")
def takes(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    takes = make_takes(str(root), LENGTHS)
    takes[2]["cameras"] = write_rig(os.path.join(root, "rig.json"))  # "medium": known cameras, one lens
    broken = os.path.join(root, "broken.avi")
    with open(broken, "wb") as fh:
        fh.write(os.urandom(4000))
    takes.append({"name": "broken", "clips": [takes[0]["clips"][0], broken]})
    return parse_manifest({"defaults": DEFAULTS, "takes": takes}, runner_options=RUNNER_OPTIONS)


@pytest.fixture(scope="module")
def one_by_one(takes, tmp_path_factory):
    """The takes without Ray, in this process, with one torch thread as in a Ray worker."""
    import torch

    out = tmp_path_factory.mktemp("alone")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Batch(takes, out, LocalExecutor(RUNNER_OPTIONS)).run()
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def ray_run(ray_session, executor, takes, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray")
    events, killed = [], threading.Event()

    def on_event(kind, **info):
        events.append((kind, info))
        # Kill the worker that was just handed the long take's second window, once.
        if kind == "window_submitted" and info["take"] == "long" and not killed.is_set() and \
                sum(1 for k, i in events if k == kind and i["take"] == "long") == 2:
            killed.set()
            ray_session.kill(executor.workers[info["worker"]], no_restart=False)

    record = Batch(takes, out, executor, max_in_flight=3, events=on_event).run()
    return out, record, events


def test_three_takes_on_ray_equal_one_by_one(ray_run, one_by_one, executor, ray_session):
    out, record, events = ray_run
    status = {t["name"]: t["status"] for t in record["takes"]}
    assert status == {"short": "done", "long": "done", "medium": "done", "broken": "failed"}, record["takes"]
    # Back-pressure: never more than max_in_flight windows decoded and not yet through the network.
    assert record["max_windows_in_flight"] == 3 and 2 <= record["peak_windows_in_flight"] <= 3
    long_take = next(t for t in record["takes"] if t["name"] == "long")
    assert long_take["windows"] == 5
    # The long take's windows went to both workers.
    assert {i["worker"] for k, i in events if k == "window_submitted" and i["take"] == "long"} == {0, 1}
    for name in LENGTHS:
        assert_same_outputs(out / name, one_by_one / name, atol=1e-4)
    # Ray restarted the killed worker, which reloaded the network and served windows again.
    pings = ray_session.get([w.ping.remote() for w in executor.workers])
    assert sum(p["restarted"] for p in pings) == 1
    assert sorted(os.listdir(out)) == ["batch.json", "long", "medium", "short"]  # nothing else, no staging


def test_broken_clip_failed_with_its_error(ray_run):
    out, record, _ = ray_run
    broken = next(t for t in record["takes"] if t["name"] == "broken")
    assert "broken.avi: not a video that can be read" in broken["error"]
    assert not os.path.exists(out / "broken" / "take.npz")


def test_second_run_skips_everything_done(ray_run, executor, takes):
    out, _, _ = ray_run
    events = []
    again = Batch(takes, out, executor, events=lambda kind, **info: events.append(kind)).run()
    status = {t["name"]: t["status"] for t in again["takes"]}
    assert status == {"short": "skipped", "long": "skipped", "medium": "skipped", "broken": "failed"}
    assert "window_done" not in events  # the broken take fails again when it opens its clips


def test_service_jobs_run_through_the_cluster(executor, takes, one_by_one, tmp_path):
    """`serve --ray`: the job queue runs each job through the same steps on the Ray workers."""
    import time

    from chromm_addon.backend.jobs import DONE, JobQueue

    queue = JobQueue(str(tmp_path), RUNNER_OPTIONS, executor_factory=lambda: executor)
    queue.start()
    try:
        job = queue.submit(next(t for t in takes if t.name == "long").options)
        deadline = time.monotonic() + 120
        while job.state not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job.state == DONE, job.error
        assert queue.network_state.startswith("ready (ray") and job.timesteps == LENGTHS["long"]
        assert job.status()["fraction"] == 1.0
        assert_same_outputs(job.folder, one_by_one / "long", atol=1e-4)
    finally:
        queue._executor = None  # the module's executor outlives this queue
        queue.stop()
