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


def standing_take(T=3, P=2, size=(160, 120), fps=30.0, N=400):
    """People standing upright side by side in front of one view (at y = -4.5, looking along +y),
    arms out, and N points on the floor: every body joint is in view, none hidden by the points."""
    f32 = np.float32
    W, H = size
    K = np.tile(np.array([[0.9 * W, 0, W / 2], [0, 0.9 * W, H / 2], [0, 0, 1]], f32), (1, T, 1, 1))
    c2w = np.tile(np.eye(4, dtype=f32), (1, T, 1, 1))
    c2w[0, :, :3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # x right, y down = -z, forward = +y
    c2w[0, :, :3, 3] = [0.0, -4.5, 0.9]
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(-3, 3, (N, 2)) + [0.0, 1.5], np.zeros(N)].astype(f32)
    transl = np.zeros((P, T, 3), f32)
    transl[:, :, 0] = ((np.arange(P) - (P - 1) / 2) * 0.9)[:, None]
    transl[:, :, 1] = (0.3 * np.arange(P))[:, None]
    transl[:, :, 2] = 1.28  # feet on the floor for the approximate skeleton
    upright = Rotation.from_euler("x", 90, degrees=True).as_rotvec().astype(f32)
    return Take(
        meta=make_meta(fps, ["view0"], 10, 10), frame_times=np.arange(T) / fps,
        image_size=np.array([[W, H]], np.int32), cam_K=K, cam_c2w=c2w, points=points,
        colors=rng.integers(0, 256, (N, 3)).astype(np.uint8), point_frames=np.full(N, -1, np.int32),
        person_ids=np.arange(P, dtype=np.int32) + 1, betas=np.zeros((P, 10), f32),
        expression=np.zeros((P, T, 10), f32), global_orient=np.tile(upright, (P, T, 1)),
        jaw_pose=np.zeros((P, T, 3), f32), body_pose=np.zeros((P, T, 21, 3), f32),
        left_hand_pose=np.zeros((P, T, 15, 3), f32), right_hand_pose=np.zeros((P, T, 15, 3), f32),
        transl=transl, valid=np.ones((P, T), bool))
