"""fuse_views end to end on simulated network output: exactness, robustness, quality targets."""

import dataclasses

import numpy as np
import pytest

from chromm_addon.errors import ChrommError
from chromm_addon.evaluation.evaluate import evaluate_single_views, evaluate_take
from chromm_addon.evaluation.simulate import PRESETS, simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.fusion.fusion import FusionOptions
from chromm_addon.options import TrackingOptions
from chromm_addon.fusion.pipeline import FuseOptions, fuse_views, nearest_valid_index
from chromm_addon.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from chromm_addon.io.take import validate_take
from chromm_addon.io.views import Views


def test_clean_views_are_reconstructed_exactly():
    scene = make_scene(num_people=3, num_views=3, num_frames=20, seed=5)
    views = simulate_views(scene, "clean", seed=5)
    take = fuse_views(views)
    validate_take(take)
    r = evaluate_take(take, scene, views=views)
    assert r["assoc_accuracy"] == 1.0 and r["id_switches"] == 0
    assert r["wa_mpjpe"] < 1e-3 and r["world_mpjpe"] < 2e-3
    assert take.meta["smplx"]["flat_hand_mean"] is True
    assert take.points.shape == views.points.shape and take.colors.dtype == np.uint8
    np.testing.assert_allclose(take.frame_times, np.arange(20) / scene.fps)


def test_missed_and_false_detections_and_one_view_people():
    scene = make_scene(num_people=3, num_views=3, num_frames=60, seed=6)
    noise = dataclasses.replace(PRESETS["realistic"], miss_rate=0.3, false_positive_rate=0.1)
    views = simulate_views(scene, noise, seed=6)
    # view 2 alone sees person 2 for the first half: drop the other views' detections of it
    gt = views.extra["gt_det_person"]
    keep = ~((gt == 2) & (views.det_view != 2) & (views.det_time < 30))
    views = _subset(views, keep)
    take = fuse_views(views)
    r = evaluate_take(take, scene, views=views)
    assert take.num_people == 3
    assert r["id_switches"] == 0
    assert r["assoc_accuracy"] > 0.97
    # false detections end up in no person
    assert (take.extra["det_person"][views.extra["gt_det_person"] < 0] == -1).mean() > 0.9


def test_one_bad_view_does_not_spoil_the_fusion():
    """View 1 puts every head 0.4 m too deep and turns every root by 45 degrees: still within
    the association gates, so the fusion itself must leave it out."""
    scene = make_scene(num_people=2, num_views=4, num_frames=30, seed=7, pauses=False)  # walking: yaw errors count
    views = simulate_views(scene, "low", seed=7)
    good = evaluate_take(fuse_views(views, options=FuseOptions(smooth=False, smooth_cameras=False,
                                                               foot_lock=False)), scene, views=views)
    bad = dataclasses.replace(views, det_rotvec=views.det_rotvec.copy(),
                              det_head_cam=views.det_head_cam.copy())
    sel = bad.det_view == 1
    scale = float(views.extra["gt_scale"])
    depth = np.linalg.norm(bad.det_head_cam[sel], axis=1, keepdims=True) / scale
    bad.det_head_cam[sel] *= 1 + 0.4 / depth
    turn = axis_angle_to_matrix(np.array([0.0, 0.0, np.deg2rad(45)]))
    bad.det_rotvec[sel, 0] = matrix_to_axis_angle(turn @ axis_angle_to_matrix(bad.det_rotvec[sel, 0]))
    fusion_only = dict(smooth=False, smooth_cameras=False, foot_lock=False)
    robust = evaluate_take(fuse_views(bad, options=FuseOptions(**fusion_only)), scene, views=bad)
    plain_opts = FuseOptions(fusion=FusionOptions(head_outlier_m=np.inf, rot_outlier_rad=np.inf),
                             **fusion_only)
    plain = evaluate_take(fuse_views(bad, options=plain_opts), scene, views=bad)
    assert robust["id_switches"] == 0 and robust["num_tracks"] == 2
    assert robust["wa_mpjpe"] < plain["wa_mpjpe"] - 0.001
    assert robust["wa_mpjpe"] < good["wa_mpjpe"] + 0.005


def test_no_detections_gives_an_empty_but_valid_take():
    scene = make_scene(num_people=0, num_views=2, num_frames=5, seed=8)
    views = simulate_views(scene, "realistic", seed=8)
    take = fuse_views(views)
    validate_take(take)
    assert take.num_people == 0 and take.cam_c2w.shape == (2, 5, 4, 4)


def test_smoothing_is_on_by_default_lowers_jitter_and_static_cameras_stand_still():
    scene = make_scene(num_people=2, num_views=3, num_frames=60, seed=9)
    views = simulate_views(scene, "realistic", seed=9)
    raw_take = fuse_views(views, options=FuseOptions(smooth=False, smooth_cameras=False))
    raw = evaluate_take(raw_take, scene, views=views)
    smoothed_take = fuse_views(views)
    smooth = evaluate_take(smoothed_take, scene, views=views)
    assert smooth["jitter"] < 0.3 * raw["jitter"]
    assert smooth["wa_mpjpe"] < raw["wa_mpjpe"]
    assert smoothed_take.meta["source"]["smoothed"] is True
    # the scene's cameras are on tripods: one constant pose each, no worse than the raw ones
    assert smoothed_take.meta["source"]["static_views"] == [True, True, True]
    assert np.ptp(smoothed_take.cam_c2w, axis=1).max() == 0
    assert np.ptp(raw_take.cam_c2w, axis=1).max() > 0
    assert smooth["cam_rot_deg"] < raw["cam_rot_deg"]
    one_euro = evaluate_take(fuse_views(views, options=FuseOptions(smooth_filter="one_euro")),
                             scene, views=views)
    assert one_euro["jitter"] < 0.5 * raw["jitter"]


def test_moving_cameras_are_smoothed_not_frozen():
    scene = make_scene(num_people=1, num_views=2, num_frames=90, seed=3, camera_motion=0.5)
    views = simulate_views(scene, "realistic", seed=3)
    take = fuse_views(views)
    assert take.meta["source"]["static_views"] == [False, False]
    raw = fuse_views(views, options=FuseOptions(smooth_cameras=False))
    assert evaluate_take(take, scene)["cam_trans_m"] < evaluate_take(raw, scene)["cam_trans_m"]


def test_unknown_filter_is_one_clear_line():
    scene = make_scene(num_people=1, num_views=2, num_frames=5, seed=8)
    with pytest.raises(ChrommError, match="v.npz: unknown smoothing filter 'kalman'"):
        fuse_views(simulate_views(scene, "low"), options=FuseOptions(smooth_filter="kalman"), path="v.npz")


def test_nearest_valid_index_holds_last_and_leads_with_first():
    valid = np.array([[0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(nearest_valid_index(valid), [[1, 1, 1, 1, 4, 4], [0] * 6])


def test_quality_targets_on_the_synthetic_benchmark():
    """4 people of one shape (no appearance cues), 4 views, 5 cm head noise, 10 degree joint
    noise, 10 % missed detections (docs/test-time-modules.md has the 300-timestep figures)."""
    scene = make_scene(num_people=4, num_views=4, num_frames=150, seed=0, same_shape=True)
    views = simulate_views(scene, "realistic", seed=1000)
    result = evaluate_take(fuse_views(views), scene, views=views)
    single = evaluate_single_views(views, scene)["best"]
    assert result["assoc_accuracy"] >= 0.99
    assert result["id_switches"] == 0
    assert result["num_tracks"] == 4
    assert result["w_mpjpe"] <= 0.7 * single["w_mpjpe"]


def _subset(views, keep):
    kw = {f.name: getattr(views, f.name) for f in dataclasses.fields(Views)}
    for key in kw:
        if key.startswith("det_"):
            kw[key] = kw[key][keep]
    kw["extra"] = dict(views.extra, gt_det_person=views.extra["gt_det_person"][keep])
    return Views(**kw)


def test_cache_reruns_only_the_late_steps_with_the_same_result():
    from chromm_addon.options import FootLockOptions

    scene = make_scene(num_people=2, num_views=3, num_frames=40, seed=13)
    views = simulate_views(scene, "realistic", seed=13)
    cache = {}
    first = fuse_views(views, cache=cache)
    stage = cache["stage"]
    late = FuseOptions(smooth_window_s=0.6, foot=FootLockOptions(blend_s=0.1))
    cached = fuse_views(views, options=late, cache=cache)
    assert cache["stage"] is stage  # steps 0-6 not run again
    fresh = fuse_views(views, options=late)
    for key in ("transl", "body_pose", "global_orient", "valid", "foot_contact", "cam_c2w"):
        np.testing.assert_array_equal(getattr(cached, key), getattr(fresh, key))
    np.testing.assert_array_equal(first.extra["det_person"], cached.extra["det_person"])
    fuse_views(views, options=FuseOptions(min_score=0.5), cache=cache)
    assert cache["stage"] is not stage  # an early option: everything again


def test_newcomer_entering_where_someone_left_keeps_its_own_identity():
    """End to end: one person walks out of both cameras' sight, an identical one walks in at the
    same place 1 s later; the take has two people on every seed."""
    from chromm_addon.evaluation.synthetic import look_at_c2w

    T, fps = 150, 30.0
    scene = make_scene(num_people=2, num_views=2, num_frames=T, seed=14, same_shape=True)
    t = np.arange(T) / fps
    # both cameras on one side with long lenses, looking across a field a few metres wide
    for v, x in enumerate((-1.0, 1.0)):
        scene.cam_c2w[v] = look_at_c2w([x, -7.0, 1.5], [0.0, 0.0, 1.1])
    scene.cam_K[:, :, :2, :2] *= 2.0

    def walk(p, x):
        scene.transl[p, :, :2] = np.stack([x, np.zeros(T)], -1) - scene.rest_joints[p, 0, :2]

    walk(0, -1.0 + 1.2 * t)
    scene.valid[1] = False
    seen = simulate_views(scene, "clean").det_time
    exit_t = t[seen.max() + 1]
    exit_x = -1.0 + 1.2 * exit_t
    walk(1, exit_x - 1.2 * (t - exit_t - 1.0))  # at the exit point 1 s after the exit, walking back in
    scene.valid[1] = t >= exit_t + 0.5
    inherited = 0
    for seed in range(3):
        views = simulate_views(scene, "realistic", seed=seed)
        gt = views.extra["gt_det_person"]
        assert views.det_time[gt == 1].min() - views.det_time[gt == 0].max() > 0.5 * fps
        r = evaluate_take(fuse_views(views), scene, views=views)
        assert r["num_tracks"] == 2 and r["id_switches"] == 0
        # without looking ahead for the exit, the newcomer would take the departed identity
        blind = FuseOptions(tracking=TrackingOptions(exit_horizon_s=0.0))
        inherited += evaluate_take(fuse_views(views, options=blind), scene)["num_tracks"] == 1
    assert inherited > 0
