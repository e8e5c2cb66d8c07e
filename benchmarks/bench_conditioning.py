"""What conditioning on known cameras changes on the tiny random Pi3X (docs/cameras.md).

Relative change (Frobenius norm) of each output when the network is told the intrinsics, then
the intrinsics and poses, of 6 views. With random weights this only shows which paths act: the
ray embedding is zero-initialised (as upstream), so intrinsics change nothing; the pose blocks'
LayerScale starts at 0.01, so poses change a little. Nothing here measures accuracy.

    .venv/bin/python benchmarks/bench_conditioning.py
"""
import os
import sys

import numpy as np
import torch
from scipy.spatial.transform import Rotation

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chromm_addon.network.chromm import build_pi3x  # noqa: E402


def main():
    torch.manual_seed(0)
    model = build_pi3x("tiny").eval()
    imgs = torch.rand(1, 6, 3, 42, 56, generator=torch.Generator().manual_seed(1))
    K = torch.tensor([[50.0, 0, 28.0], [0, 50.0, 21.0], [0, 0, 1]]).expand(1, 6, 3, 3)
    rng = np.random.default_rng(0)
    poses = np.stack([np.eye(4) for _ in range(6)])
    for pose in poses:
        pose[:3, :3] = Rotation.random(random_state=rng).as_matrix()
        pose[:3, 3] = rng.normal(size=3) * 2
    poses = torch.tensor(poses, dtype=torch.float32)[None]
    with torch.no_grad():
        plain = model(imgs)
        runs = {"intrinsics": model(imgs, intrinsics=K), "intrinsics + poses": model(imgs, intrinsics=K, poses=poses)}
    for name, out in runs.items():
        change = {k: float((out[k] - plain[k]).norm() / plain[k].norm()) for k in ("points", "camera_poses", "metric", "rays")}
        print(f"{name:20s} " + "  ".join(f"{k} {v:.2e}" for k, v in change.items()))


if __name__ == "__main__":
    main()
