"""Scale adjustment: projection against OpenCV and recovery of a simulated scene-scale error."""

import dataclasses

import numpy as np
import pytest

from chromm_addon.body.skeleton import approximate_rest_joints
from chromm_addon.evaluation.simulate import PRESETS, simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.fusion.body import RestSkeleton, joint_positions, rotvec53_to_joints
from chromm_addon.fusion.detections import gather_detections
from chromm_addon.fusion.pipeline import detection_scale_ratio, fuse_views
from chromm_addon.fusion.scale import projected_head_pelvis, robust_mean_ratio

cv2 = pytest.importorskip("cv2")


def test_projected_segment_matches_opencv():
    rng = np.random.default_rng(0)
    n = 5
    rot = rotvec53_to_joints(rng.normal(scale=0.3, size=(n, 53, 3)))
    rest = np.broadcast_to(approximate_rest_joints(), (n, 55, 3))
    head = np.column_stack([rng.uniform(-1, 1, (n, 2)), rng.uniform(3, 8, n)])
    K = np.array([[900.0, 0, 640], [0, 910.0, 360], [0, 0, 1]])
    got = projected_head_pelvis(rot, rest, head, np.broadcast_to(K, (n, 3, 3)))
    pos = joint_positions(rot, rest, [0, 15])
    for i in range(n):
        pts = np.stack([head[i], head[i] + pos[i, 0] - pos[i, 1]])
        uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, None)
        np.testing.assert_allclose(got[i], uv[1, 0] - uv[0, 0], rtol=1e-9, atol=1e-9)


def test_robust_mean_ignores_outliers_and_unmeasurable_samples():
    ratios = np.array([1.4, 1.41, 1.39, 1.42, np.nan, 9.0, 0.1, 1.38])
    assert robust_mean_ratio(ratios) == pytest.approx(1.4, abs=1e-9)
    assert robust_mean_ratio(np.full(3, np.nan)) == 1.0


@pytest.mark.parametrize("scale_factor,preset,tol", [(0.7, "clean", 1e-4), (1.3, "clean", 1e-4),
                                                     (0.7, "realistic", 0.03)])
def test_scene_scale_error_is_recovered(scale_factor, preset, tol):
    scene = make_scene(num_people=3, num_views=3, num_frames=30, seed=1)
    noise = dataclasses.replace(PRESETS[preset], scale_factor=scale_factor)
    views = simulate_views(scene, noise, seed=1)
    first = detection_scale_ratio(gather_detections(views, 0.3), RestSkeleton(None))
    assert first == pytest.approx(scale_factor, rel=max(tol, 0.04))
    take = fuse_views(views)
    # network units times the applied scale are metres
    assert take.meta["source"]["scale"] * scale_factor == pytest.approx(1.0, rel=tol)
    # camera centres: pairwise distances are metric again
    gt = scene.cam_c2w[:, 0, :3, 3]
    got = take.cam_c2w[:, 0, :3, 3]
    for i, j in ((0, 1), (1, 2), (0, 2)):
        assert np.linalg.norm(got[i] - got[j]) == pytest.approx(np.linalg.norm(gt[i] - gt[j]),
                                                                rel=max(tol, 0.01) * 2)


def test_length_ratio_is_biased_by_rotation_noise_and_the_projected_component_less():
    scene = make_scene(num_people=4, num_views=4, num_frames=30, seed=2)
    noise = dataclasses.replace(PRESETS["realistic"], focal_sigma_rel=0.0, head_sigma_m=0.0)
    det = gather_detections(simulate_views(scene, noise, seed=2), 0.3)
    length = detection_scale_ratio(det, RestSkeleton(None), along_prediction=False) / 0.7 - 1
    component = detection_scale_ratio(det, RestSkeleton(None), along_prediction=True) / 0.7 - 1
    assert length > 0.015
    assert abs(component) < length / 2
