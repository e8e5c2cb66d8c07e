"""The batch on Ray: GPU worker actors, reader actors and fusion tasks (see batch.py for the steps).

- One `WindowWorker` actor per GPU (`num_gpus=gpus_per_worker`) loads the network once and serves
  windows from every take. A worker that dies (process or node lost) is restarted by Ray
  (`max_restarts`) and the windows it held are run again (`max_task_retries`); no retry loop of
  our own.
- One `TakeReader` actor per take in progress (CPU) decodes its clips front to back and hands
  out windows; the frames go from the reader to a worker through the object store, never through
  the driver.
- `finish_take` (fusion, writing, building) runs as a CPU task (`max_retries`; its writes are
  staged, so a retry never meets half-written files).
- The driver aligns each take's windows (Sim(3), needs only their outputs) and writes batch.json.
"""

import os
import socket

from ..errors import ChrommError
from .batch import TakeReader, WindowWorker, finish_take

MAX_RESTARTS = 4          # per worker actor
MAX_TASK_RETRIES = 4      # per window, when the worker running it dies
FINISH_RETRIES = 2


def package_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def connect(address, **init_options):
    """Start or join Ray for --ray auto|local|ADDRESS; returns a description. Reuses a Ray
    session this process already has. `init_options` go to ray.init (num_cpus, object_store_memory)."""
    import ray

    if address not in ("auto", "local") and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ChrommError(f"--ray {address}: expected auto, local or HOST:PORT (the head's GCS "
                              "address printed by `ray start --head`, port 6379 by default)")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
        except OSError as exc:
            raise ChrommError(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                              "start one with `ray start --head` on the head node") from None
    if ray.is_initialized():
        return "ray (this process's session)"
    # Every node imports this package from the driver's copy (no install on the GPU nodes).
    runtime_env = {"py_modules": [os.path.join(package_root(), "chromm_addon")]}
    try:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False,
                 logging_level="ERROR", **init_options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = " (start one with `ray start --head`)" if address == "auto" else ""
        raise ChrommError(f"--ray {address}: cannot connect to a Ray cluster{hint}: "
                          f"{str(exc).strip().splitlines()[0]}") from None
    return f"ray {address}"


class RayExecutor:
    """Runs the batch's steps on the Ray cluster this process is connected to."""

    def __init__(self, runner_options, workers=None, gpus_per_worker=1.0, cpus_per_worker=1.0,
                 cpus_per_task=1.0, description="ray"):
        import ray

        self.ray = ray
        self.description = description
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if gpus_per_worker < 0 or cpus_per_worker < 0 or cpus_per_task < 0:
            raise ChrommError("--gpus-per-worker: expected 0 or more")
        if gpus_per_worker > 0:
            if gpus < gpus_per_worker:
                raise ChrommError(f"--gpus-per-worker {gpus_per_worker:g}: the Ray cluster has {gpus:g} "
                                  "GPU(s); add GPU nodes, or use --gpus-per-worker 0 for CPU workers")
            count = workers if workers is not None else int(gpus // gpus_per_worker)
        else:
            count = workers if workers is not None else 1
        if count < 1:
            raise ChrommError(f"--workers {count}: expected at least 1")
        cpus = float(ray.cluster_resources().get("CPU", 0))
        if count * cpus_per_worker + cpus_per_task > cpus:
            # Otherwise the readers and fusion tasks would wait forever for a free CPU.
            raise ChrommError(f"--workers {count}: the Ray cluster has {cpus:g} CPU(s); {count} worker(s) "
                              f"take {count * cpus_per_worker:g} and each take's reader needs "
                              f"{cpus_per_task:g} more; use fewer workers")
        worker_class = ray.remote(WindowWorker).options(
            num_gpus=gpus_per_worker, num_cpus=cpus_per_worker, max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_TASK_RETRIES)
        self._reader_class = ray.remote(TakeReader).options(num_cpus=cpus_per_task, max_restarts=0)
        self._finish = ray.remote(finish_take).options(num_cpus=cpus_per_task, max_retries=FINISH_RETRIES)
        self.workers = [worker_class.remote(runner_options) for _ in range(count)]
        self.concurrent_takes = count + 1  # one more than workers, so a take's tail never idles them
        try:  # the network loads on every worker before any take starts: fail once, clearly
            ray.get([w.ping.remote() for w in self.workers])
        except Exception as exc:  # noqa: BLE001 - any load failure ends the batch with one line
            from .batch import error_line

            self.shutdown()
            raise ChrommError(f"Ray worker: the network did not load ({error_line(exc)})") from None

    @property
    def num_workers(self):
        return len(self.workers)

    def reader(self, options):
        return self._reader_class.remote(options)

    def call(self, actor, method, *args):
        return getattr(actor, method).remote(*args)

    def finish(self, views, options, folder, blend, overlay=None, sources=None):
        return self._finish.remote(views, options, folder, blend, overlay, sources)

    def get(self, ref):
        return self.ray.get(ref)

    def wait(self, refs):
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=1.0)
        return ready

    def release(self, actor):
        self.ray.kill(actor)

    def describe(self):
        return self.description

    def shutdown(self):
        for worker in self.workers:
            self.ray.kill(worker)
        self.workers = []
