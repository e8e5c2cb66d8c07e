"""Batch benchmark (run by hand): takes per hour with 1 and 2 Ray workers, per-window costs.

    .venv/bin/python benchmarks/bench_batch.py [--takes 6 --timesteps 40 --views 2 --window 8
                                                --workers 1 2 --cpus 2]

Starts a local Ray instance (`--cpus` logical CPUs, a small object store), makes `--takes`
synthetic takes (MJPG clips, the tiny random network) and runs the same batch in this process
without Ray and then on Ray with each worker count (CPU workers of half a CPU, readers and fusion
tasks half a CPU). Prints a Markdown table: wall time, takes per hour, and the per-window costs
(decode in the reader, network in the worker, alignment on the driver) and per-take costs (open,
fuse + write) taken from batch.json, which feed the throughput model of docs/batch.md.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from bench_backend import machine, make_clips  # noqa: E402 (benchmarks/ is this script's folder)


def per_window_costs(record):
    done = [t for t in record["takes"] if t["status"] == "done"]
    windows = sum(t["windows"] for t in done)
    total = {k: sum(t["seconds"].get(k, 0.0) for t in done) for k in ("open", "decode", "network", "merge",
                                                                       "fuse", "write")}
    return {"decode": total["decode"] / windows, "network": total["network"] / windows,
            "merge": total["merge"] / windows, "open": total["open"] / len(done),
            "fuse_write": (total["fuse"] + total["write"]) / len(done), "windows": windows}


def run_batch(specs, executor, out):
    from chromm_addon.backend.batch import Batch

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    record = Batch(specs, out, executor).run()
    wall = time.perf_counter() - t0
    bad = [t for t in record["takes"] if t["status"] != "done"]
    if bad:
        raise SystemExit(f"take {bad[0]['name']} {bad[0]['status']}: {bad[0]['error']}")
    return wall, record


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--takes", type=int, default=6)
    parser.add_argument("--timesteps", type=int, default=40)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()

    import ray

    from chromm_addon.backend.batch import LocalExecutor, parse_manifest
    from chromm_addon.backend.cluster import RayExecutor, connect
    from chromm_addon.options import ReconstructOptions

    work = tempfile.mkdtemp(prefix="chromm-bench-batch-")
    try:
        takes = []
        for i in range(args.takes):
            folder = os.path.join(work, "clips", f"take{i}")
            os.makedirs(folder)
            takes.append({"name": f"take{i}", "clips": make_clips(folder, args.views, args.timesteps)})
        clip_bytes = sum(os.path.getsize(c) for t in takes for c in t["clips"])
        runner_options = ReconstructOptions(network="tiny", device="cpu")
        specs = parse_manifest({"defaults": {"window": args.window}, "takes": takes}, runner_options=runner_options)
        rows = []
        wall, record = run_batch(specs, LocalExecutor(runner_options), os.path.join(work, "local"))
        rows.append(("this process, no Ray", wall, per_window_costs(record)))
        t0 = time.perf_counter()
        connect("local", num_cpus=args.cpus, object_store_memory=100 << 20, include_dashboard=False)
        ray_start = time.perf_counter() - t0
        for n in args.workers:
            executor = RayExecutor(runner_options, workers=n, gpus_per_worker=0, cpus_per_worker=0.5,
                                   cpus_per_task=0.5)
            try:
                wall, record = run_batch(specs, executor, os.path.join(work, f"ray{n}"))
            finally:
                executor.shutdown()
            rows.append((f"Ray, {n} worker(s)", wall, per_window_costs(record)))
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {machine()}; {args.takes} takes x {args.views} views x {args.timesteps} timesteps "
          f"(64x48 MJPG), windows of {args.window}; Ray start {ray_start:.1f} s (not counted)\n")
    print("| run | wall s | takes/hour | windows | decode s/window | network s/window | align s/window "
          "| open s/take | fuse+write s/take |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, wall, c in rows:
        print(f"| {name} | {wall:.1f} | {args.takes / wall * 3600:.0f} | {c['windows']} | {c['decode']:.3f} | "
              f"{c['network']:.3f} | {c['merge']:.4f} | {c['open']:.3f} | {c['fuse_write']:.3f} |")
    c = rows[0][2]
    print(f"\nclip bytes per window: {clip_bytes / c['windows'] / 1e3:.1f} kB; driver alignment bound: "
          f"{1 / c['merge']:.0f} windows/s")


if __name__ == "__main__":
    main()
