"""Preprocessing speed: upstream-exact Pillow paths against the previous OpenCV / torch paths.

    .venv/bin/python benchmarks/bench_preprocess.py [--frames 16] [--size 1920x1080]

Times, per frame, Pi3X's resize (Pillow LANCZOS, on the thread pool, vs. cv2.INTER_LANCZOS4)
and Multi-HMR's letterbox (Pillow contain + pad vs. torch antialiased bicubic), and reports how
far the old paths were from upstream's pixels on the same photographic-like frames.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))


def old_resize(frames, size):
    import cv2

    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LANCZOS4) for f in frames])


def old_letterbox(frames, size):
    import torch
    import torch.nn.functional as F

    from chromm_addon.network.image_maps import contain_size, pad_offset

    h, w = frames.shape[1:3]
    cw, ch = contain_size((w, h), size)
    x0, y0 = pad_offset((cw, ch), size)
    x = torch.as_tensor(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(ch, cw), mode="bicubic", antialias=True, align_corners=False).round().clamp(0, 255)
    out = torch.zeros(len(frames), size, size, 3, dtype=torch.uint8)
    out[:, y0:y0 + ch, x0:x0 + cw] = x.permute(0, 2, 3, 1).to(torch.uint8)
    return out.numpy()


def timed(fn, *args, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--mhmr-size", type=int, default=896)
    args = parser.parse_args(argv)
    from test_preprocess_pillow import photo_like

    from chromm_addon.network.multihmr_preprocess import letterbox_uint8
    from chromm_addon.network.preprocess import pi3x_image_size, resize_frames

    w, h = map(int, args.size.split("x"))
    frames = np.stack([photo_like(w, h, seed=i % 4) for i in range(args.frames)])
    size = pi3x_image_size(w, h)
    n = args.frames
    print(f"{n} frames {w}x{h}, {os.cpu_count()} CPUs")
    t_new, new = timed(resize_frames, frames, size)
    t_old, old = timed(old_resize, frames, size)
    d = np.abs(new.astype(int) - old)
    print(f"Pi3X resize to {size[0]}x{size[1]}: Pillow {t_new / n * 1e3:.1f} ms/frame, "
          f"old cv2 {t_old / n * 1e3:.1f} ms/frame; old differs by max {d.max()} mean {d.mean():.2f} "
          f"levels, {np.mean(d > 1) * 100:.0f} % of values by more than one")
    t_new, new = timed(letterbox_uint8, frames, args.mhmr_size)
    t_old, old = timed(old_letterbox, frames, args.mhmr_size)
    d = np.abs(new.astype(int) - old)
    print(f"Multi-HMR letterbox to {args.mhmr_size}: Pillow {t_new / n * 1e3:.1f} ms/frame, "
          f"old torch {t_old / n * 1e3:.1f} ms/frame; old differs by max {d.max()} levels, "
          f"{np.mean(d > 0) * 100:.1f} % of values")


if __name__ == "__main__":
    main()
