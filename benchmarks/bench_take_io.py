"""Take file write/read speed and size, run by hand (figures go into docs/take-format.md).

    .venv/bin/python benchmarks/bench_take_io.py [--people 4] [--frames 1000] [--views 4]
                                                 [--points 1000000] [--repeats 3]

Writes a random but valid take of that size to a temporary folder with write_take, reads it back
with read_take (full validation included), and reports the best of `repeats` runs.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chromm_addon.io.take import Take, make_meta, read_take, write_take  # noqa: E402


def random_take(P, T, V, N, seed=0):
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    c2w = np.tile(np.eye(4, dtype=np.float32), (V, T, 1, 1))
    c2w[..., :3, 3] = f32(V, T, 3)
    K = np.tile(np.array([[1000, 0, 960], [0, 1000, 540], [0, 0, 1]], np.float32), (V, T, 1, 1))
    return Take(
        meta=make_meta(30.0, [f"view{i}" for i in range(V)], 10, 10),
        frame_times=np.arange(T) / 30.0, image_size=np.tile(np.array([1920, 1080], np.int32), (V, 1)),
        cam_K=K, cam_c2w=c2w, points=f32(N, 3),
        colors=rng.integers(0, 256, (N, 3)).astype(np.uint8),
        point_frames=np.full(N, -1, np.int32), person_ids=np.arange(P, dtype=np.int32),
        betas=f32(P, 10), expression=f32(P, T, 10), global_orient=f32(P, T, 3),
        jaw_pose=f32(P, T, 3), body_pose=f32(P, T, 21, 3), left_hand_pose=f32(P, T, 15, 3),
        right_hand_pose=f32(P, T, 15, 3), transl=f32(P, T, 3), valid=np.ones((P, T), bool))


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    take = random_take(args.people, args.frames, args.views, args.points)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.npz")
        t_write = best_of(lambda: write_take(path, take), args.repeats)
        t_read = best_of(lambda: read_take(path), args.repeats)
        size = os.path.getsize(path)
    print(f"take: {args.people} people x {args.frames} timesteps x {args.views} views, "
          f"{args.points} points")
    print(f"file size {size / 1e6:.1f} MB; write_take {t_write * 1000:.0f} ms; "
          f"read_take (with validation) {t_read * 1000:.0f} ms  (best of {args.repeats})")


if __name__ == "__main__":
    main()
