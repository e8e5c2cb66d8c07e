"""Gravity and floor: the fused world is Z up with the floor at z = 0."""

import dataclasses

import numpy as np
import pytest

from chromm_addon.body.lbs import full_pose_matrices, posed_joints
from chromm_addon.body.skeleton import approximate_rest_joints
from chromm_addon.evaluation.simulate import PRESETS, simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.fusion.alignment import fit_plane, ransac_floor, FloorOptions, rotation_between
from chromm_addon.fusion.pipeline import fuse_views


def take_joints(take):
    rot = full_pose_matrices(take.global_orient, take.body_pose, take.jaw_pose,
                             take.left_hand_pose, take.right_hand_pose)
    return posed_joints(approximate_rest_joints(), None, rot, take.transl)


@pytest.mark.parametrize("a,b", [([0, 0, 1.0], [0, 0, 1.0]), ([1.0, 2, 3], [0, 0, 1.0]),
                                 ([0, 0, -1.0], [0, 0, 1.0]), ([0.3, -0.2, 0.9], [1.0, 0, 0])])
def test_rotation_between(a, b):
    r = rotation_between(np.array(a), np.array(b))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(r @ (np.array(a) / np.linalg.norm(a)), np.array(b) / np.linalg.norm(b),
                               atol=1e-12)


def test_ransac_finds_the_floor_under_clutter():
    rng = np.random.default_rng(0)
    up = np.array([0.1, -0.2, 1.0])
    up /= np.linalg.norm(up)
    basis = np.linalg.svd(up[None])[2][1:]
    floor = rng.uniform(-4, 4, size=(3000, 2)) @ basis + 0.7 * up + rng.normal(scale=0.005, size=(3000, 3))
    wall = rng.uniform(-4, 4, size=(4000, 3)) * [0.01, 1, 1] + [3.0, 0, 0]
    clutter = rng.uniform(-4, 4, size=(1000, 3))
    n, height = ransac_floor(np.concatenate([floor, wall, clutter]), up + [0.05, 0, 0], 0.6,
                             FloorOptions())
    assert np.degrees(np.arccos(n @ up)) < 0.5
    assert height == pytest.approx(0.7, abs=0.01)
    assert abs(fit_plane(floor)[1] @ up) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("points_per_view,tol", [(3000, 0.01), (0, 0.03)])
def test_fused_world_has_the_true_heights(points_per_view, tol):
    """The network frame is camera 0's (tilted, scaled); after fusion every joint's height above
    the floor must be the ground truth's, from the scene plane or from the feet alone."""
    scene = make_scene(num_people=3, num_views=3, num_frames=40, seed=4)
    noise = dataclasses.replace(PRESETS["clean"], points_per_view=points_per_view)
    take = fuse_views(simulate_views(scene, noise, seed=4))
    assert take.meta["source"]["up"] == ("scene plane" if points_per_view else "feet plane")
    gt = scene.joints()
    got = take_joints(take)
    heads = take.extra["person_head"]
    assert take.num_people == 3
    np.testing.assert_allclose(np.sort(got[..., 2].ravel()), np.sort(gt[..., 2].ravel()), atol=tol)
    # horizontal distances between people are preserved (the world only turned about Z)
    d_got = np.linalg.norm(heads[0, :, :2] - heads[1, :, :2], axis=-1)
    d_gt = np.sort([np.linalg.norm(gt[i, :, 15, :2] - gt[j, :, 15, :2], axis=-1).mean()
                    for i in range(3) for j in range(i + 1, 3)])
    assert np.min(np.abs(d_gt - d_got.mean())) < tol * 3
    # cameras stand where they stood: heights of the camera centres
    np.testing.assert_allclose(np.sort(take.cam_c2w[:, 0, 2, 3]), np.sort(scene.cam_c2w[:, 0, 2, 3]),
                               atol=tol * 2)
