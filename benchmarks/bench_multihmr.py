"""Multi-HMR throughput: images per second and peak memory, run by hand.

    .venv/bin/python benchmarks/bench_multihmr.py --config tiny --device cpu
    .venv/bin/python benchmarks/bench_multihmr.py --config full896 --device cpu --frames 1 --repeats 1
    python benchmarks/bench_multihmr.py --config full896 --device cuda --frames 64   # on a GPU host

Default workload: 4 views x 16 timesteps = 64 letterboxed frames in batches of `--batch`, at the
configuration's input size, with the detector's default threshold. Weights are random, so the
number of detections is forced with `--people` (the top-scoring patches of each image are kept):
the head's cost depends on it, the backbone's does not. CUDA runs use bf16 autocast for the
backbone (the heads run in float32); CPU runs use float32. Peak memory: CUDA
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--people", type=int, default=4, help="detections kept per image")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from chromm_addon.network.multihmr import MultiHMR, default_intrinsics, multihmr_config

    device = torch.device(args.device)
    with torch.device(device):
        model = MultiHMR(multihmr_config(args.config)).eval()
    size = model.img_size
    images = torch.rand(args.frames, 3, size, size, device=device)
    K = default_intrinsics(size, device=device).expand(args.frames, 3, 3)
    bf16 = device.type == "cuda"

    def run():
        people = []
        for start in range(0, args.frames, args.batch):
            x, k = images[start:start + args.batch], K[start:start + args.batch]
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                feats = model.features(x)
                scores = model.detection_scores(feats).flatten(1)
                # threshold at the args.people-th best score of the batch's weakest image
                thresh = float(scores.topk(args.people, dim=1).values[:, -1].min())
                people += model.predict_people(feats, k, det_thresh=thresh, nms_kernel=1)
        return people

    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = _peak_rss_bytes()
    start = time.perf_counter()
    for _ in range(args.repeats):
        people = run()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _peak_rss_bytes() - rss_before
    seconds = (time.perf_counter() - start) / args.repeats
    detections = sum(len(p["scores"]) for p in people)
    print(f"multihmr {args.config} on {args.device}: {args.frames} frames at {size}x{size} in batches of "
          f"{args.batch}, {detections} people: {seconds:.3f} s, {args.frames / seconds:.2f} images/s, "
          f"peak memory {peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
