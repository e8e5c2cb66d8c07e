"""Sim(3) alignment (Umeyama with scale) and the merging of overlapping windows."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from chromm_addon.backend.windows import WindowMerger, plan_overlap, transform_views
from chromm_addon.geometry.similarity import Sim3, umeyama
from chromm_addon.io.views import Views, make_meta, validate_views


def random_sim3(rng, scale_range=(0.5, 2.0)):
    return Sim3(float(rng.uniform(*scale_range)), Rotation.random(random_state=rng).as_matrix(),
                rng.normal(size=3) * 3)


def test_umeyama_recovers_known_transform():
    rng = np.random.default_rng(1)
    truth = random_sim3(rng)
    src = rng.normal(size=(30, 3))
    dst = truth.apply(src)
    est = umeyama(src, dst)
    assert est.scale == pytest.approx(truth.scale, rel=1e-9)
    np.testing.assert_allclose(est.rotation, truth.rotation, atol=1e-9)
    np.testing.assert_allclose(est.translation, truth.translation, atol=1e-9)
    # Independent check: scipy's Kabsch on the centred, rescaled points gives the same rotation.
    rot, _ = Rotation.align_vectors(dst - dst.mean(0), (src - src.mean(0)) * truth.scale)
    np.testing.assert_allclose(rot.as_matrix(), est.rotation, atol=1e-9)


def test_umeyama_with_noise_and_rotation_pairs():
    rng = np.random.default_rng(2)
    truth = random_sim3(rng)
    src = rng.normal(size=(200, 3))
    dst = truth.apply(src) + rng.normal(scale=1e-3, size=(200, 3))
    src_r = Rotation.random(5, random_state=rng).as_matrix()
    dst_r = truth.rotation @ src_r
    est = umeyama(src, dst, src_rotations=src_r, dst_rotations=dst_r)
    assert est.scale == pytest.approx(truth.scale, rel=1e-3)
    assert np.degrees(Rotation.from_matrix(est.rotation.T @ truth.rotation).magnitude()) < 0.1


def test_rotation_pairs_fix_rotation_when_points_are_collinear():
    rng = np.random.default_rng(3)
    truth = random_sim3(rng)
    src = np.outer(np.linspace(-1, 1, 5), [1.0, 0.2, 0.0])  # a line: rotation about it is free
    dst = truth.apply(src)
    src_r = Rotation.random(3, random_state=rng).as_matrix()
    est = umeyama(src, dst, src_rotations=src_r, dst_rotations=truth.rotation @ src_r)
    np.testing.assert_allclose(est.rotation, truth.rotation, atol=1e-8)
    assert est.scale == pytest.approx(truth.scale, rel=1e-8)
    np.testing.assert_allclose(est.apply(src), dst, atol=1e-8)


def test_single_point_keeps_scale():
    est = umeyama([[1.0, 2.0, 3.0]], [[0.0, 0.0, 1.0]], src_rotations=[np.eye(3)], dst_rotations=[np.eye(3)])
    assert est.scale == 1.0
    np.testing.assert_allclose(est.apply([[1.0, 2.0, 3.0]]), [[0.0, 0.0, 1.0]], atol=1e-12)


def test_apply_c2w_matches_points():
    rng = np.random.default_rng(4)
    sim = random_sim3(rng)
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    c2w[:3, 3] = rng.normal(size=3)
    p_cam = rng.normal(size=3)
    world = c2w[:3, :3] @ p_cam + c2w[:3, 3]
    moved = sim.apply_c2w(c2w)
    # A point in camera coordinates scales with the world.
    np.testing.assert_allclose(moved[:3, :3] @ (sim.scale * p_cam) + moved[:3, 3], sim.apply(world), atol=1e-12)
    np.testing.assert_allclose(sim.matrix() @ np.append(world, 1.0), np.append(sim.apply(world), 1.0))


def ground_truth(rng, num_views=3, num_frames=40, num_people=2, width=64, height=48):
    """World-frame cameras circling a scene, people walking, static points; all as one Views."""
    K = np.array([[60.0, 0, width / 2], [0, 60.0, height / 2], [0, 0, 1]])
    c2w = np.zeros((num_views, num_frames, 4, 4))
    for v in range(num_views):
        for t in range(num_frames):
            angle = 2 * np.pi * v / num_views + 0.01 * t
            centre = np.array([4 * np.cos(angle), 4 * np.sin(angle), 1.5 + 0.01 * t])
            forward = -centre / np.linalg.norm(centre)
            right = np.cross(forward, [0, 0, 1.0])
            right /= np.linalg.norm(right)
            down = np.cross(forward, right)
            c2w[v, t, :3, :3] = np.stack([right, down, forward], axis=1)
            c2w[v, t, :3, 3] = centre
            c2w[v, t, 3, 3] = 1
    scene = rng.uniform(-2, 2, size=(300, 3))
    det = {k: [] for k in ("view", "time", "head_cam", "head_2d")}
    pts = {k: [] for k in ("points", "view", "time")}
    for t in range(num_frames):
        heads = [np.array([p - 0.5, 0.02 * t, 1.6]) for p in range(num_people)]
        for v in range(num_views):
            w2c = np.linalg.inv(c2w[v, t])
            for head in heads:
                cam = w2c[:3, :3] @ head + w2c[:3, 3]
                det["view"].append(v)
                det["time"].append(t)
                det["head_cam"].append(cam)
                det["head_2d"].append((K @ cam)[:2] / cam[2])
            chosen = rng.choice(len(scene), 40, replace=False)
            pts["points"].append(scene[chosen])
            pts["view"].append(np.full(40, v))
            pts["time"].append(np.full(40, t))
    d = len(det["view"])
    n = 40 * num_views * num_frames
    return Views(
        meta=make_meta(30, [f"v{i}" for i in range(num_views)]),
        image_size=np.tile(np.array([width, height], np.int32), (num_views, 1)),
        cam_K=np.tile(K, (num_views, num_frames, 1, 1)).astype(np.float32),
        cam_c2w=c2w.astype(np.float32),
        det_view=np.array(det["view"], np.int32), det_time=np.array(det["time"], np.int32),
        det_score=np.ones(d, np.float32), det_head_2d=np.array(det["head_2d"], np.float32),
        det_pelvis_2d=np.array(det["head_2d"], np.float32) + 5,
        det_head_cam=np.array(det["head_cam"], np.float32),
        det_rotvec=np.zeros((d, 53, 3), np.float32), det_betas=np.zeros((d, 10), np.float32),
        det_expression=np.zeros((d, 10), np.float32),
        points=np.concatenate(pts["points"]).astype(np.float32), colors=np.full((n, 3), 128, np.uint8),
        point_view=np.concatenate(pts["view"]).astype(np.int32),
        point_time=np.concatenate(pts["time"]).astype(np.int32), point_conf=np.ones(n, np.float32))


def cut(views, start, count):
    """The window of timesteps start .. start + count - 1 with local time indices."""
    stop = start + count
    d = (views.det_time >= start) & (views.det_time < stop)
    p = (views.point_time >= start) & (views.point_time < stop)
    return Views(meta=dict(views.meta), image_size=views.image_size,
                 cam_K=views.cam_K[:, start:stop], cam_c2w=views.cam_c2w[:, start:stop],
                 det_view=views.det_view[d], det_time=views.det_time[d] - start,
                 det_score=views.det_score[d], det_head_2d=views.det_head_2d[d],
                 det_pelvis_2d=views.det_pelvis_2d[d], det_head_cam=views.det_head_cam[d],
                 det_rotvec=views.det_rotvec[d], det_betas=views.det_betas[d],
                 det_expression=views.det_expression[d], points=views.points[p], colors=views.colors[p],
                 point_view=views.point_view[p], point_time=views.point_time[p] - start,
                 point_conf=views.point_conf[p])


def head_world(views):
    c2w = views.cam_c2w[views.det_view, views.det_time].astype(np.float64)
    return np.einsum("nij,nj->ni", c2w[:, :3, :3], views.det_head_cam) + c2w[:, :3, 3]


def test_windows_in_random_frames_merge_back_into_one():
    rng = np.random.default_rng(5)
    truth = ground_truth(rng)
    size = 12
    overlap = plan_overlap(size)
    merger = WindowMerger(30, truth.meta["views"])
    frames = []
    start = 0
    while True:
        count = min(size, truth.num_frames - start)
        frame = random_sim3(rng) if start else Sim3()
        frames.append(frame)
        merger.add(transform_views(cut(truth, start, count), frame), start)
        if start + count >= truth.num_frames:
            break
        start += size - overlap
    merged = merger.views()
    validate_views(merged)
    assert merged.num_frames == truth.num_frames
    assert merged.num_detections == truth.num_detections
    np.testing.assert_allclose(merged.cam_c2w, truth.cam_c2w, atol=2e-4)
    order_m = np.lexsort((merged.det_view, merged.det_time))
    order_t = np.lexsort((truth.det_view, truth.det_time))
    np.testing.assert_allclose(head_world(merged)[order_m], head_world(truth)[order_t], atol=2e-4)
    assert len(frames) == len(merger.transforms) > 3
    for (s, est), frame in zip(merger.transforms[1:], frames[1:]):  # estimate = inverse of the frame
        assert est.scale * frame.scale == pytest.approx(1.0, rel=1e-4)
    assert len(merged.points) == len(truth.points)


def test_merger_bounds_points():
    rng = np.random.default_rng(6)
    truth = ground_truth(rng, num_frames=20)
    merger = WindowMerger(30, truth.meta["views"], max_points=500)
    merger.add(cut(truth, 0, 10), 0)
    merger.add(cut(truth, 8, 12), 8)
    merged = merger.views()
    assert len(merged.points) == 500
    validate_views(merged)


@pytest.mark.parametrize("count, size", [(13, 4), (14, 4), (4, 8), (40, 12), (5, 2), (1, 4)])
def test_window_source_cuts_the_planned_windows(count, size):
    """WindowSource (what the readers hand out) cuts exactly the windows plan_windows predicts,
    with the right frames; the batch's progress and the local pipeline rely on the plan."""
    from types import SimpleNamespace

    from chromm_addon.backend.windows import WindowSource, plan_windows

    clips = [SimpleNamespace(height=2, width=3) for _ in range(2)]
    samples = ((k, [np.full((2, 3, 3), k, np.uint8), np.full((2, 3, 3), 100 + k, np.uint8)]) for k in range(count))
    source = WindowSource(clips, samples, min(size, count))
    got = []
    while (window := source.next_window()) is not None:
        start, frames = window
        assert [int(f[0, 0, 0, 0]) for f in frames] == [start, 100 + start]
        np.testing.assert_array_equal(frames[0][:, 0, 0, 0], np.arange(start, start + len(frames[0])))
        got.append((start, len(frames[0])))
    assert got == plan_windows(count, size)
    assert source.timesteps == count
