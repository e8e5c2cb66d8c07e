"""Backend benchmark (run by hand): stage times, 1080p decode throughput, peak memory vs take length.

    .venv/bin/python benchmarks/bench_backend.py stages  [--views 4 --timesteps 300 --window 16 --device cpu]
    .venv/bin/python benchmarks/bench_backend.py decode  [--frames 240 --clips 1]
    .venv/bin/python benchmarks/bench_backend.py memory  [--lengths 100 250 500 1000 --window 16
                                                          --network tiny|stand-in --width 64 --height 48]

`stages` runs the whole pipeline (decode, network in windows, merge, fuse, write) on synthetic
clips with the tiny random network; `memory` runs it once per take length in a fresh process and
reports the peak resident memory and the decoded frames alive at once. Results go to stdout as a
Markdown table; copy them into docs/backend.md with the machine they ran on.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def make_clips(folder, views, frames, fps=30, width=64, height=48):
    from backend_synth import write_clip

    return [write_clip(os.path.join(folder, f"view{v}.avi"), frames, fps, width=width, height=height)
            for v in range(views)]


def machine():
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {gpu}"


def bench_stages(args):
    from chromm_addon.backend.pipeline import ReconstructOptions, reconstruct
    from chromm_addon.network.runner import NetworkRunner
    from smplx_synth import make_synthetic_smplx

    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(tmp, args.views, args.timesteps, width=args.width, height=args.height)
        smplx = str(make_synthetic_smplx(os.path.join(tmp, "SMPLX_NEUTRAL.npz")))
        runner = NetworkRunner.tiny(seed=0, device=args.device)
        options = ReconstructOptions(clips=clips, window=args.window, smplx=smplx)
        t0 = time.perf_counter()
        stats = reconstruct(options, os.path.join(tmp, "take.npz"), os.path.join(tmp, "views.npz"), runner=runner)
        total = time.perf_counter() - t0
    s = stats.seconds
    backend = total - s.get("network", 0.0)
    print(f"machine: {machine()}")
    print(f"{args.views} views x {stats.timesteps} timesteps of {args.width}x{args.height}, window {stats.window_size}, "
          f"{stats.windows} windows, tiny network on {args.device}, {stats.detections} detections\n")
    print("| stage | seconds | per timestep (ms) |\n|---|---|---|")
    for name in ("open", "decode", "network", "merge", "fuse", "write"):
        print(f"| {name} | {s.get(name, 0.0):.2f} | {1000 * s.get(name, 0.0) / stats.timesteps:.1f} |")
    print(f"| total | {total:.2f} | {1000 * total / stats.timesteps:.1f} |")
    print(f"\nbackend (all but the network): {backend:.2f} s = {100 * backend / s['network']:.1f} % of the network's time")


def bench_decode(args):
    import cv2
    import numpy as np

    from chromm_addon.backend.timeline import open_clips, plan_timeline, sample

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hd.mp4" if args.fourcc in ("mp4v", "h264") else "hd.avi")
        writer = H264Writer(path) if args.fourcc == "h264" else \
            cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*args.fourcc), 30.0, (1920, 1080))
        # Camera-like content: smooth shading, texture, moving shapes (noise would not compress).
        y, x = np.mgrid[0:1080, 0:1920]
        rng = np.random.default_rng(0)
        texture = cv2.GaussianBlur(rng.integers(0, 255, (1080, 1920), dtype=np.uint8), (0, 0), 3)
        base = np.stack([(x / 8) % 256, (y / 5) % 256, texture], axis=2).astype(np.uint8)
        for i in range(args.frames):
            frame = np.roll(base, 4 * i, axis=1)
            for p in range(3):
                cv2.circle(frame, (300 + 400 * p + 6 * i, 540 + 100 * p), 120, (40 * p, 200, 255 - 60 * p), -1)
            cv2.putText(frame, str(i), (100, 500), cv2.FONT_HERSHEY_SIMPLEX, 8, (255, 255, 255), 12)
            writer.write(frame)
        writer.release()
        size_mb = os.path.getsize(path) / 1e6
        # Raw OpenCV decode for reference, then the backend's sampler (decode + timestamps + RGB).
        cap = cv2.VideoCapture(path)
        t0 = time.perf_counter()
        n = 0
        while cap.read()[0]:
            n += 1
        raw = n / (time.perf_counter() - t0)
        cap.release()
        # The previous backend path: OpenCV read + timestamp + BGR -> RGB.
        cap = cv2.VideoCapture(path)
        t0 = time.perf_counter()
        n = 0
        while True:
            ok, image = cap.read()
            if not ok:
                break
            cap.get(cv2.CAP_PROP_POS_MSEC)
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            n += 1
        old = n / (time.perf_counter() - t0)
        cap.release()
        clips, offsets = open_clips([path] * args.clips)
        timeline = plan_timeline(clips, offsets)
        t0 = time.perf_counter()
        count = sum(1 for _ in sample(clips, offsets, timeline))
        sampled = count * args.clips / (time.perf_counter() - t0)
    print(f"machine: {machine()}; cv2 {cv2.__version__}, {cv2.getNumThreads()} threads")
    print(f"1920x1080 {args.fourcc} clip, {args.frames} frames ({size_mb:.0f} MB), {args.clips} clip(s) decoded together")
    print("| reader | frames/s |\n|---|---|")
    print(f"| cv2.VideoCapture.read (BGR) | {raw:.0f} |")
    print(f"| previous backend path: cv2 read + timestamp + RGB, 1 clip | {old:.0f} |")
    print(f"| backend sampler, PyAV (timestamps + RGB + orientation) | {sampled:.0f} |")


class H264Writer:
    """cv2.VideoWriter's interface over PyAV's libx264 (the OpenCV wheel has no H.264 encoder)."""

    def __init__(self, path):
        import av

        self.out = av.open(path, "w")
        self.stream = self.out.add_stream("libx264", rate=30, options={"crf": "20"})
        self.stream.width, self.stream.height, self.stream.pix_fmt = 1920, 1080, "yuv420p"

    def write(self, bgr):
        import av

        frame = av.VideoFrame.from_ndarray(bgr[..., ::-1].copy(), format="rgb24")
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def release(self):
        for packet in self.stream.encode():
            self.out.mux(packet)
        self.out.close()


class StandInNetwork:
    """Returns a views window of realistic size (cameras, 3 detections and 2000 points per image)
    computed from the frames' mean colours, at no compute cost: isolates the backend's own memory."""

    name, device = "stand-in", "cpu"

    def window_size(self, image_hw, num_views):
        return 16

    def run_window(self, frames, view_names, fps, cameras=None):
        import numpy as np

        from chromm_addon.io.views import Views, make_meta

        v, t = len(frames), len(frames[0])
        shade = np.stack([f.reshape(t, -1).mean(axis=1) for f in frames]) / 255.0  # (V, T)
        c2w = np.tile(np.eye(4, dtype=np.float32), (v, t, 1, 1))
        c2w[..., 0, 3] = shade
        K = np.tile(np.array([[50, 0, 16], [0, 50, 12], [0, 0, 1]], np.float32), (v, t, 1, 1))
        d, n = 3 * v * t, 2000 * v * t
        img = np.repeat(np.arange(v * t), 3)
        rng = np.random.default_rng(0)
        return Views(meta=make_meta(fps, view_names, model="stand-in"),
                     image_size=np.array([[f.shape[2], f.shape[1]] for f in frames], np.int32),
                     cam_K=K, cam_c2w=c2w, det_view=(img // t).astype(np.int32), det_time=(img % t).astype(np.int32),
                     det_score=np.ones(d, np.float32), det_head_2d=rng.uniform(0, 20, (d, 2)).astype(np.float32),
                     det_pelvis_2d=rng.uniform(0, 20, (d, 2)).astype(np.float32),
                     det_head_cam=rng.uniform(1, 3, (d, 3)).astype(np.float32),
                     det_rotvec=np.zeros((d, 53, 3), np.float32), det_betas=np.zeros((d, 10), np.float32),
                     det_expression=np.zeros((d, 10), np.float32),
                     points=rng.normal(size=(n, 3)).astype(np.float32), colors=np.zeros((n, 3), np.uint8),
                     point_view=np.repeat(np.arange(v), n // v).astype(np.int32),
                     point_time=np.tile(np.repeat(np.arange(t), 2000), v).astype(np.int32),
                     point_conf=np.ones(n, np.float32))


def memory_child(args):
    from chromm_addon.backend.pipeline import ReconstructOptions, reconstruct_views
    from chromm_addon.backend.video import LIVE_FRAMES

    if args.network == "tiny":
        from chromm_addon.network.runner import NetworkRunner

        runner = NetworkRunner.tiny(seed=0, device=args.device, pixel_limit=14 * 14 * 4)
    else:
        runner = StandInNetwork()
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(tmp, args.views, args.child, width=args.width, height=args.height)
        LIVE_FRAMES.reset_peak()
        t0 = time.perf_counter()
        views, stats = reconstruct_views(ReconstructOptions(clips=clips, window=args.window), runner=runner)
        seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"timesteps": stats.timesteps, "windows": stats.windows, "peak_rss_mb": peak_kb / 1024,
                      "frames_alive_peak": LIVE_FRAMES.peak, "buffer_frames": stats.buffer_frames,
                      "views_mb": sum(getattr(views, k).nbytes for k in ("cam_K", "cam_c2w", "det_rotvec",
                                                                         "points")) / 1e6,
                      "seconds": seconds}))


def bench_memory(args):
    rows = []
    for length in args.lengths:
        cmd = [sys.executable, __file__, "memory", "--child", str(length), "--views", str(args.views),
               "--window", str(args.window), "--device", args.device, "--network", args.network,
               "--width", str(args.width), "--height", str(args.height)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"machine: {machine()}")
    print(f"{args.views} views of {args.width}x{args.height}, window {args.window}, {args.network} network "
          f"on {args.device}\n")
    print("| timesteps | windows | peak RSS (MB) | decoded frames alive (peak) | window buffer (frames) | "
          "merged views (MB) | seconds |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['timesteps']} | {r['windows']} | {r['peak_rss_mb']:.0f} | {r['frames_alive_peak']} | "
              f"{r['buffer_frames']} | {r['views_mb']:.1f} | {r['seconds']:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("stages", "decode", "memory"))
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=300)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--clips", type=int, default=1)
    parser.add_argument("--fourcc", default="mp4v", help="decode: mp4v, MJPG (OpenCV writes) or h264 (PyAV)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 250, 500, 1000])
    parser.add_argument("--network", choices=("tiny", "stand-in"), default="tiny",
                        help="memory: the tiny network, or a stand-in of no cost that isolates the backend")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.what == "memory" and args.child:
        return memory_child(args)
    {"stages": bench_stages, "decode": bench_decode, "memory": bench_memory}[args.what](args)


if __name__ == "__main__":
    main()
