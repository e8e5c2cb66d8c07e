"""Network throughput: images per second and peak memory, run by hand.

    .venv/bin/python benchmarks/bench_network.py pi3x --config tiny --device cpu
    python benchmarks/bench_network.py pi3x --config full --device cuda      # on a GPU host
    .venv/bin/python benchmarks/bench_network.py network --config tiny --device cpu [--heads]

Default workload: 4 views x 16 timesteps of 1920x1080 video at Pi3X's default size (672x378),
all 64 frames in one forward pass (one shared world frame, `--layout joint`), or one pass per
timestep batch element (`--layout per-timestep`: B=16, N=4). Weights are random (speed does not
depend on them). CUDA runs use bf16 autocast; CPU runs use float32. Peak memory: CUDA
max_memory_allocated, CPU the growth of the process's peak resident set over all runs (the
model's weights excluded). `--warmup 0` skips the untimed first run (CPU runs are slow).
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(fn, device, repeats, warmup=1):
    """Run fn `warmup` times, then `repeats` times timed; returns (seconds per run, peak bytes).

    CPU peak: growth of the peak resident set from before the first run (warm-up included), i.e.
    the inputs' and activations' memory on top of the model's."""
    import torch

    rss_before = _peak_rss_bytes()
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
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

    seconds, peak = _timed(run, device, args.repeats, args.warmup)
    count = b * n
    print(f"pi3x {args.config} on {args.device}: {args.views} views x {args.timesteps} timesteps "
          f"({args.layout}, B={b}, N={n}) at {width}x{height}: {seconds:.3f} s per pass, "
          f"{count / seconds:.2f} images/s, peak memory {peak / 2**30:.2f} GiB")


def _calibrate_detector(runner, frame, people):
    """Shift the random detector's bias so that about `people` patches per image pass its
    threshold (a real scene's count; random weights would detect hundreds)."""
    import torch

    from chromm_addon.network.multihmr_preprocess import letterbox_frames

    mhmr = runner.network.multihmr
    with torch.inference_mode():
        feats = mhmr.features(letterbox_frames(frame, mhmr.config.img_size, runner.device))
        logits = mhmr.mlp_classif(feats.float())[..., 0].flatten()
        target = torch.logit(torch.tensor(runner.network.det_thresh))
        kth = logits.sort(descending=True).values[min(people * 3, logits.numel() - 1)]
        mhmr.mlp_classif[2].bias += target - kth


def bench_network(args):
    """The whole network through NetworkRunner.run_window: uint8 frames in, a Views object out
    (resizing, letterboxing, Pi3X on all V*T images jointly, Multi-HMR at its input size in
    chunks, people placement, scene points, the transfer to the host). `--heads` adds the CHROMM
    heads (CHROMM-checkpoint mode); without, the composition mode."""
    import numpy as np
    import torch

    from chromm_addon.network.preprocess import PIXEL_LIMIT
    from chromm_addon.network.runner import NetworkRunner

    device = torch.device(args.device)
    runner = NetworkRunner.random(tiny=args.config == "tiny", device=args.device, with_heads=args.heads,
                                  pixel_limit=PIXEL_LIMIT)
    width, height = args.source_size
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (args.timesteps, height, width, 3), dtype=np.uint8) for _ in range(args.views)]
    names = [f"view{i}" for i in range(args.views)]
    _calibrate_detector(runner, frames[0][:1], args.people)
    detections = []

    def run():
        detections.append(runner.run_window(frames, names, 30.0).num_detections)

    seconds, peak = _timed(run, device, args.repeats)
    count = args.views * args.timesteps
    print(f"network ({runner.model_name}) {args.config} on {args.device}: {args.views} views x "
          f"{args.timesteps} timesteps of {width}x{height}, Multi-HMR at {runner.mhmr_size}: "
          f"{seconds:.3f} s per window, {count / seconds:.2f} images/s, peak memory {peak / 2**30:.2f} GiB "
          f"(process peak RSS {_peak_rss_bytes() / 2**30:.2f} GiB), {detections[-1]} detections")


SECTIONS = {"pi3x": bench_pi3x, "network": bench_network}


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
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--heads", action="store_true", help="network: with the CHROMM heads")
    parser.add_argument("--people", type=int, default=8, help="network: people per image to detect")
    args = parser.parse_args(argv)
    SECTIONS[args.section](args)


if __name__ == "__main__":
    main()
