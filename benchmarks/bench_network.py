"""Network throughput: images per second and peak memory, run by hand.

    .venv/bin/python benchmarks/bench_network.py pi3x --config tiny --device cpu
    python benchmarks/bench_network.py pi3x --config full --device cuda      # on a GPU host

Default workload: 4 views x 16 timesteps of 1920x1080 video at Pi3X's default size (672x378),
all 64 frames in one forward pass (one shared world frame, `--layout joint`), or one pass per
timestep batch element (`--layout per-timestep`: B=16, N=4). Weights are random (speed does not
depend on them). CUDA runs use bf16 autocast; CPU runs use float32. Peak memory: CUDA
max_memory_allocated, CPU the growth of the process's peak resident set during the timed runs.
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(fn, device, repeats):
    """Run fn once to warm up, then `repeats` times; returns (seconds per run, peak bytes)."""
    import torch

    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = _peak_rss_bytes()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _peak_rss_bytes() - rss_before
    return (time.perf_counter() - start) / repeats, peak


def bench_pi3x(args):
    import torch

    from chromm_addon.network.pi3x import Pi3X, pi3x_config
    from chromm_addon.network.preprocess import pi3x_image_size

    device = torch.device(args.device)
    width, height = pi3x_image_size(*args.source_size)
    with torch.device(device):
        model = Pi3X(pi3x_config(args.config)).eval()
    if args.layout == "joint":
        b, n = 1, args.views * args.timesteps
    else:
        b, n = args.timesteps, args.views
    images = torch.rand(b, n, 3, height, width, device=device)

    def run():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(images)
        return out["points"]

    seconds, peak = _timed(run, device, args.repeats)
    count = b * n
    print(f"pi3x {args.config} on {args.device}: {args.views} views x {args.timesteps} timesteps "
          f"({args.layout}, B={b}, N={n}) at {width}x{height}: {seconds:.3f} s per pass, "
          f"{count / seconds:.2f} images/s, peak memory {peak / 2**30:.2f} GiB")


SECTIONS = {"pi3x": bench_pi3x}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=sorted(SECTIONS))
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=16)
    parser.add_argument("--layout", choices=("joint", "per-timestep"), default="joint")
    parser.add_argument("--source-size", type=int, nargs=2, default=(1920, 1080), metavar=("W", "H"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    SECTIONS[args.section](args)


if __name__ == "__main__":
    main()
