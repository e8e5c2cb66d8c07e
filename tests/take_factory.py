"""Random but plausible takes for tests: people turning and walking, cameras around them."""

import numpy as np
from scipy.spatial.transform import Rotation

from chromm_addon.io.take import Take, make_meta


def make_take(T=6, P=2, V=2, N=300, fps=30.0, flat_hand_mean=True, seed=0, dynamic=True):
    """A random but plausible take: people turning and walking, cameras around them."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    K = np.tile(np.array([[600.0, 0, 330], [0, 600, 235], [0, 0, 1]], f32), (V, T, 1, 1))
    c2w = np.tile(np.eye(4, dtype=f32), (V, T, 1, 1))
    for v in range(V):
        c2w[v, :, :3, :3] = Rotation.from_euler("x", 90 + 10 * v, degrees=True).as_matrix()
        c2w[v, :, :3, 3] = [v - 0.5, -5.0, 1.5]
    points = rng.uniform(-3, 3, (N, 3)).astype(f32)
    point_frames = np.full(N, -1, np.int32)
    if dynamic:
        point_frames[N // 2:] = rng.integers(0, T, N - N // 2)
    ids = np.arange(P, dtype=np.int32) * 3 + 1
    return Take(
        meta=make_meta(fps, [f"view{v}" for v in range(V)], 10, 10, flat_hand_mean=flat_hand_mean),
        frame_times=np.arange(T) / fps,
        image_size=np.tile(np.array([640, 480], np.int32), (V, 1)), cam_K=K, cam_c2w=c2w,
        points=points, colors=rng.integers(0, 256, (N, 3)).astype(np.uint8),
        point_frames=point_frames, person_ids=ids,
        betas=rng.normal(size=(P, 10)).astype(f32),
        expression=rng.normal(size=(P, T, 10)).astype(f32),
        global_orient=Rotation.random(P * T, random_state=seed).as_rotvec().reshape(P, T, 3).astype(f32),
        jaw_pose=(0.2 * rng.normal(size=(P, T, 3))).astype(f32),
        body_pose=(0.4 * rng.normal(size=(P, T, 21, 3))).astype(f32),
        left_hand_pose=(0.4 * rng.normal(size=(P, T, 15, 3))).astype(f32),
        right_hand_pose=(0.4 * rng.normal(size=(P, T, 15, 3))).astype(f32),
        transl=rng.normal(scale=2.0, size=(P, T, 3)).astype(f32),
        valid=np.ones((P, T), bool))
