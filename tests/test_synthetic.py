"""Synthetic scenes and simulated views files: ground truth semantics, determinism, noise model."""

import dataclasses

import numpy as np
import pytest

from chromm_addon.body.lbs import skin
from chromm_addon.body.model_file import load_smplx_model
from chromm_addon.evaluation.metrics import foot_sliding
from chromm_addon.evaluation.simulate import PRESETS, SimulationNoise, simulate_views
from chromm_addon.evaluation.synthetic import (DEFAULT_FOOT_CLEARANCE, FOOT_JOINTS, look_at_c2w,
                                               make_scene)
from chromm_addon.geometry.rotations import axis_angle_to_matrix, rotation_angle
from chromm_addon.io.take import read_take, write_take
from chromm_addon.io.views import read_views, write_views


@pytest.fixture(scope="module")
def scene():
    return make_scene(num_people=4, num_views=4, num_frames=120, seed=3)


def test_same_seed_same_scene_other_seed_differs():
    a = make_scene(num_people=2, num_views=3, num_frames=20, seed=7)
    b = make_scene(num_people=2, num_views=3, num_frames=20, seed=7)
    c = make_scene(num_people=2, num_views=3, num_frames=20, seed=8)
    for key in ("transl", "body_pose", "betas", "cam_c2w", "cam_K", "points", "colors"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.allclose(a.transl, c.transl)
    va, vb = simulate_views(a, seed=1), simulate_views(b, seed=1)
    np.testing.assert_array_equal(va.det_rotvec, vb.det_rotvec)
    np.testing.assert_array_equal(va.extra["gt_det_person"], vb.extra["gt_det_person"])


def test_take_round_trip(scene, tmp_path):
    path = write_take(tmp_path / "gt.npz", scene.to_take())
    take = read_take(path)
    assert take.num_people == 4 and take.num_views == 4 and take.num_frames == 120
    np.testing.assert_allclose(take.transl, scene.transl, atol=1e-6)
    np.testing.assert_allclose(take.cam_c2w, scene.cam_c2w, atol=1e-5)
    assert take.flat_hand_mean


def test_feet_on_floor_and_upright(scene):
    joints = scene.joints()
    lowest = joints[:, :, list(FOOT_JOINTS), 2].min(axis=-1)
    np.testing.assert_allclose(lowest, DEFAULT_FOOT_CLEARANCE, atol=1e-9)  # a foot always planted
    head, pelvis = joints[:, :, 15], joints[:, :, 0]
    assert np.all(head[..., 2] > pelvis[..., 2] + 0.4)
    # arms hang: wrists below shoulders
    assert np.all(joints[:, :, 20, 2] < joints[:, :, 16, 2])
    assert np.all(joints[:, :, 21, 2] < joints[:, :, 17, 2])


def test_people_walk_forward_stop_and_some_pass_close(scene):
    joints = scene.joints()
    step = np.linalg.norm(np.diff(joints[:, :, 0, :2], axis=1), axis=-1)
    vel = np.diff(joints[:, :, 0, :2], axis=1)
    moving = step * scene.fps > 0.5
    vel = vel[moving] / step[moving][:, None]
    forward = axis_angle_to_matrix(scene.global_orient)[:, 1:, :2, 2][moving]  # body +Z in world
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    assert np.min(np.sum(forward * vel, -1)) > 0.9
    speed = step * scene.fps
    assert 0.5 < speed.mean() < 1.8 and speed.max() < 1.6
    assert np.mean(speed < 0.05) > 0.1  # standing phases
    gaps = np.linalg.norm(joints[:, None, :, 0, :2] - joints[None, :, :, 0, :2], axis=-1)
    closest = min(gaps[a, b].min() for a in range(4) for b in range(a + 1, 4))
    assert closest < 0.7
    # turns: the heading changes by more than 90 degrees within the take
    heading = np.unwrap(np.arctan2(forward[..., 1], forward[..., 0]))
    assert np.ptp(heading) > np.pi / 2


def test_planted_feet_and_contact_labels(scene):
    """Ground-truth contact: a foot bearing weight does not move at all and stands on the floor;
    every frame has a foot down, standing frames both; swinging feet leave the floor."""
    joints = scene.joints()
    contact = scene.foot_contact
    assert contact.shape == (4, 120, 2) and contact.dtype == bool
    assert contact.any(-1).all() and (contact.all(-1)).mean() > 0.15
    for side, feet in enumerate(((7, 10), (8, 11))):
        still = contact[:, 1:, side] & contact[:, :-1, side]
        motion = np.linalg.norm(np.diff(joints[:, :, feet], axis=1), axis=-1)  # (P, T-1, 2)
        assert motion[still].max() < 1e-9
        foot_z = joints[:, :, feet[1], 2]
        np.testing.assert_allclose(foot_z[contact[..., side]], DEFAULT_FOOT_CLEARANCE, atol=1e-9)
        assert foot_z[~contact[..., side]].mean() > DEFAULT_FOOT_CLEARANCE + 0.02
        assert motion[~still].mean() > 0.02
    # the GT-contact foot sliding of the ground truth itself is zero
    gt_feet = joints[0][:, list(FOOT_JOINTS)]
    assert foot_sliding(gt_feet, gt_feet, contact=contact[0][:, [0, 1, 0, 1]]) < 1e-12


def test_walk_without_pauses():
    scene = make_scene(num_people=2, num_views=2, num_frames=90, seed=1, pauses=False)
    speed = np.linalg.norm(np.diff(scene.joints()[:, :, 0, :2], axis=1), axis=-1) * scene.fps
    assert speed.min() > 0.8
    assert 0.15 < scene.foot_contact.all(-1).mean() < 0.25  # double support: 2 x 10 % of a cycle


def test_same_shape_and_shapes_differ():
    same = make_scene(num_people=3, num_views=2, num_frames=5, same_shape=True)
    assert np.all(same.betas == same.betas[0])
    other = make_scene(num_people=3, num_views=2, num_frames=5)
    assert not np.allclose(other.betas[0], other.betas[1])


def test_cameras_look_at_the_action(scene):
    import cv2

    joints = scene.joints()
    assert np.any(scene.image_size[:, 0] < scene.image_size[:, 1])  # a portrait view
    c = scene.cam_c2w[:, 0, :3, 3]
    assert np.all((c[:, 2] >= 1.0) & (c[:, 2] <= 2.0))
    for v in range(scene.num_views):
        R = scene.cam_c2w[v, 0, :3, :3]
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-9)
        assert np.linalg.det(R) > 0
        w2c = np.linalg.inv(scene.cam_c2w[v, 0])
        rvec, _ = cv2.Rodrigues(w2c[:3, :3])
        uv, _ = cv2.projectPoints(np.zeros((1, 3)) + [0, 0, 1.0], rvec, w2c[:3, 3], scene.cam_K[v, 0], None)
        w, h = scene.image_size[v]
        assert 0.2 * w < uv[0, 0, 0] < 0.8 * w and 0.2 * h < uv[0, 0, 1] < 0.8 * h
        # most people's heads are in front of every camera
        assert np.mean((joints[:, 0, 15] - c[v]) @ R[:, 2] > 0) == 1.0
    sizes = make_scene(num_people=1, num_views=2, num_frames=2,
                       image_size=[(640, 480), (480, 640)]).image_size
    np.testing.assert_array_equal(sizes, [[640, 480], [480, 640]])


def test_camera_motion():
    static = make_scene(num_people=1, num_views=2, num_frames=60)
    moving = make_scene(num_people=1, num_views=2, num_frames=60, camera_motion=0.5)
    assert np.ptp(static.cam_c2w[:, :, :3, 3], axis=1).max() == 0
    assert np.ptp(moving.cam_c2w[:, :, :3, 3], axis=1).max() > 0.05


@pytest.mark.slow  # imports torch for the smplx reference
def test_with_model_matches_smplx_and_stands_on_the_floor(smplx_model_path):
    import smplx
    import torch

    model = load_smplx_model(smplx_model_path)
    scene = make_scene(num_people=2, num_views=2, num_frames=4, model=model, seed=1)
    joints = scene.joints()
    body = smplx.SMPLX(smplx_model_path, num_betas=10, num_expression_coeffs=10, use_pca=False,
                       flat_hand_mean=True, batch_size=4)
    t = lambda a: torch.tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    for p in range(2):
        out = body(betas=t(scene.betas[p][None].repeat(4, 0)), global_orient=t(scene.global_orient[p]),
                   body_pose=t(scene.body_pose[p].reshape(4, -1)), transl=t(scene.transl[p]),
                   left_hand_pose=t(scene.left_hand_pose[p].reshape(4, -1)),
                   right_hand_pose=t(scene.right_hand_pose[p].reshape(4, -1)),
                   jaw_pose=t(scene.jaw_pose[p]), expression=t(scene.expression[p]))
        np.testing.assert_allclose(out.joints[:, :55].detach().numpy(), joints[p], atol=1e-5)
        verts = skin(model, scene.betas[p], scene.expression[p, 0], scene.rotations()[p, 0],
                     scene.transl[p, 0])
        assert abs(verts[:, 2].min()) < 0.05  # soles near z = 0


def test_clean_simulation_is_exact(scene):
    import cv2

    views = simulate_views(scene, PRESETS["clean"])
    person = views.extra["gt_det_person"]
    assert np.all(person >= 0) and views.num_detections > 0.5 * 4 * 4 * 120
    world_from_net = views.extra["gt_world_from_net"]
    scale = float(views.extra["gt_scale"])
    c2w = views.cam_c2w[views.det_view, views.det_time].astype(np.float64)
    head_net = np.einsum("dij,dj->di", c2w[:, :3, :3], views.det_head_cam) + c2w[:, :3, 3]
    head_world = head_net @ world_from_net[:3, :3].T + world_from_net[:3, 3]
    joints = scene.joints()
    np.testing.assert_allclose(head_world, joints[person, views.det_time, 15], atol=2e-5)
    # head in camera frame is the true one times the network's scale
    true_c2w = scene.cam_c2w[views.det_view, views.det_time]
    head = joints[person, views.det_time, 15]
    true_cam = np.einsum("dji,dj->di", true_c2w[:, :3, :3], head - true_c2w[:, :3, 3])
    np.testing.assert_allclose(views.det_head_cam, scale * true_cam, atol=2e-5)
    # 2D points equal OpenCV's projection of the true joints
    for d in range(0, views.num_detections, 97):
        v, t = views.det_view[d], views.det_time[d]
        w2c = np.linalg.inv(scene.cam_c2w[v, t])
        rvec, _ = cv2.Rodrigues(w2c[:3, :3])
        uv, _ = cv2.projectPoints(joints[person[d], t, [15, 0]], rvec, w2c[:3, 3], scene.cam_K[v, t], None)
        np.testing.assert_allclose(views.det_head_2d[d], uv[0, 0], atol=1e-2)
        np.testing.assert_allclose(views.det_pelvis_2d[d], uv[1, 0], atol=1e-2)
    # root rotation in the camera frame, other joints as in the scene
    R_world = world_from_net[:3, :3] * scale
    go = R_world @ c2w[:, :3, :3] @ axis_angle_to_matrix(views.det_rotvec[:, 0])
    t = views.det_time
    np.testing.assert_allclose(go, axis_angle_to_matrix(scene.global_orient[person, t]), atol=1e-5)
    np.testing.assert_allclose(views.det_rotvec[:, 1:22], scene.body_pose[person, t], atol=1e-5)
    np.testing.assert_allclose(views.det_rotvec[:, 52], scene.jaw_pose[person, views.det_time], atol=1e-5)
    np.testing.assert_allclose(views.det_betas, scene.betas[person], atol=1e-6)
    # scene points map back onto the true scene
    pts_world = views.points @ world_from_net[:3, :3].T + world_from_net[:3, 3]
    assert np.isin(views.point_view, np.arange(4)).all()
    near = np.min(np.linalg.norm(pts_world[::50, None] - scene.points[None], axis=-1), axis=1)
    assert near.max() < 1e-4


def test_noise_levels_and_misses(scene, tmp_path):
    noise = SimulationNoise(head_sigma_m=0.05, rot_sigma_deg=10.0, miss_rate=0.2,
                            false_positive_rate=0.1)
    clean = simulate_views(scene, PRESETS["clean"], seed=0)
    views = simulate_views(scene, noise, seed=0)
    person = views.extra["gt_det_person"]
    true = person >= 0
    assert abs(true.sum() / clean.num_detections - 0.8) < 0.03
    assert abs((~true).sum() / true.sum() - 0.1) < 0.03
    scale = float(views.extra["gt_scale"])
    joints = scene.joints()
    c2w = scene.cam_c2w[views.det_view[true], views.det_time[true]]
    true_cam = np.einsum("dji,dj->di", c2w[:, :3, :3],
                         joints[person[true], views.det_time[true], 15] - c2w[:, :3, 3])
    err = views.det_head_cam[true] / scale - true_cam
    assert abs(err.std() - 0.05) < 0.005
    body_err = rotation_angle(np.swapaxes(axis_angle_to_matrix(views.det_rotvec[true, 1:22]), -1, -2)
                              @ axis_angle_to_matrix(scene.body_pose[person[true], views.det_time[true]]))
    assert abs(np.sqrt(np.mean(body_err**2)) - np.deg2rad(10.0)) < np.deg2rad(0.5)
    # the file keeps the ground truth keys
    back = read_views(write_views(tmp_path / "views.npz", views))
    np.testing.assert_array_equal(back.extra["gt_det_person"], person)
    np.testing.assert_allclose(back.extra["gt_world_from_net"], views.extra["gt_world_from_net"])


def test_occluded_people_are_not_detected():
    # two people in a line with camera 0: the farther one is hidden in that view
    scene = make_scene(num_people=2, num_views=2, num_frames=1, seed=0)
    c2w = scene.cam_c2w[0, 0]
    forward = c2w[:3, 2] * np.array([1, 1, 0])
    forward /= np.linalg.norm(forward)
    eye = np.array([c2w[0, 3], c2w[1, 3], 1.2])  # below head height, looking level
    c2w = scene.cam_c2w[0, 0] = look_at_c2w(eye, eye + forward)
    near_xy = c2w[:2, 3] + 3.0 * forward[:2]
    far_xy = c2w[:2, 3] + 5.0 * forward[:2]
    for p, xy in enumerate((near_xy, far_xy)):
        scene.transl[p, :, :2] = xy - scene.rest_joints[p, 0, :2]
    views = simulate_views(scene, PRESETS["clean"])
    seen_in_0 = views.extra["gt_det_person"][views.det_view == 0]
    assert list(seen_in_0) == [0]
    assert int(views.extra["gt_det_occluded_dropped"]) >= 1


def test_all_view_gaps():
    scene = make_scene(num_people=2, num_views=3, num_frames=150, seed=2)
    noise = dataclasses.replace(PRESETS["clean"], gap_rate=0.6, gap_length_s=(0.5, 0.5))
    views = simulate_views(scene, noise, seed=4)
    person = views.extra["gt_det_person"]
    seen = np.zeros((2, 150), bool)
    seen[person, views.det_time] = True
    clean = simulate_views(scene, PRESETS["clean"], seed=4)
    seen_clean = np.zeros((2, 150), bool)
    seen_clean[clean.extra["gt_det_person"], clean.det_time] = True
    assert not np.any(seen & ~seen_clean)
    lost = seen_clean & ~seen
    assert lost.any()
    # gaps are whole runs of 15 frames (0.5 s) with the person missing from every view
    longest = 0
    for p in range(2):
        runs = np.diff(np.concatenate([[0], lost[p].astype(int), [0]]))
        longest = max(longest, (np.flatnonzero(runs == -1) - np.flatnonzero(runs == 1)).max(initial=0))
    assert longest >= 10
