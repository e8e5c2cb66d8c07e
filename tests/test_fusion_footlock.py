"""Foot contact and locking: detected like the ground truth, planted feet do not move and stand
on the floor, only the legs (and the root height) change, no pops."""

import numpy as np

from chromm_addon.body.lbs import forward_kinematics
from chromm_addon.evaluation.evaluate import evaluate_take
from chromm_addon.evaluation.simulate import simulate_views
from chromm_addon.evaluation.synthetic import DEFAULT_FOOT_CLEARANCE, make_scene
from chromm_addon.fusion.footlock import FootLockOptions, clean_runs, hysteresis, lock_feet
from chromm_addon.fusion.pipeline import FuseOptions, fuse_views
from chromm_addon.fusion.smoothing import smooth_rotations, smooth_values
from chromm_addon.geometry.rotations import axis_angle_to_matrix
from chromm_addon.io.take import read_take, write_take

FEET = ((7, 10), (8, 11))


def noisy_scene_bodies(seed):
    """A synthetic walk with smoothed noise on every rotation and the root: (scene, rot, rest,
    transl) as the fusion would hand them to the foot locking."""
    scene = make_scene(num_people=2, num_views=2, num_frames=150, seed=seed)
    rng = np.random.default_rng(seed)
    P, T = 2, 150
    rot = scene.rotations() @ axis_angle_to_matrix(rng.normal(scale=0.05, size=(P, T, 55, 3)))
    transl = scene.transl + rng.normal(scale=0.02, size=(P, T, 3)) + [0, 0, 0.015]
    valid = np.ones(T, bool)
    for p in range(P):
        rot[p] = smooth_rotations(rot[p], valid, 4)
        transl[p] = smooth_values(transl[p], valid, 4)
    rest = np.broadcast_to(scene.rest_joints[:, None], (P, T, 55, 3))
    return scene, rot, rest, transl


def joints_of(rot, rest, transl):
    return forward_kinematics(rot, rest)[1] + transl[..., None, :]


def test_hysteresis_and_run_cleaning():
    enter = np.array([0, 1, 0, 0, 0, 0, 1, 0], bool)
    leave = np.array([0, 0, 0, 1, 0, 0, 0, 0], bool)
    np.testing.assert_array_equal(hysteresis(enter, leave), [0, 1, 1, 0, 0, 0, 1, 1])
    mask = np.array([1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0], bool)
    np.testing.assert_array_equal(clean_runs(mask, min_on=2, min_off=2),
                                  [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])


def test_locked_feet_are_planted_on_the_floor_and_only_legs_change():
    for seed in (0, 1):
        scene, rot, rest, transl = noisy_scene_bodies(seed)
        valid = np.ones((2, 150), bool)
        locked, new_transl, contact = lock_feet(rot, rest, transl, valid,
                                                np.full(2, DEFAULT_FOOT_CLEARANCE), scene.fps)
        gt = scene.foot_contact
        recall = (contact & gt).sum() / gt.sum()
        precision = (contact & gt).sum() / contact.sum()
        assert recall > 0.85 and precision > 0.95
        before, after = joints_of(rot, rest, transl), joints_of(locked, rest, new_transl)
        for side, feet in enumerate(FEET):
            held = contact[:, 1:, side] & contact[:, :-1, side]
            move = np.linalg.norm(np.diff(after[:, :, feet], axis=1), axis=-1)
            assert move[held].max() < 1e-6
            z = after[:, :, feet[1], 2][contact[..., side]]
            np.testing.assert_allclose(z, DEFAULT_FOOT_CLEARANCE, atol=1e-6)  # flat on the floor
            # sliding on ground-truth contact frames: far below the unlocked feet's
            gt_held = gt[:, 1:, side] & gt[:, :-1, side]
            raw = np.linalg.norm(np.diff(before[:, :, feet], axis=1), axis=-1)[gt_held].mean()
            assert move[gt_held].mean() < 0.3 * raw
        # nothing under the floor
        lowest = after[..., [7, 8], 2].min() - 0.11, after[..., [10, 11], 2].min() - DEFAULT_FOOT_CLEARANCE
        assert min(lowest) > -0.006
        legs = [1, 2, 4, 5, 7, 8]
        others = [j for j in range(55) if j not in legs]
        np.testing.assert_array_equal(locked[:, :, others], rot[:, :, others])
        np.testing.assert_array_equal(new_transl[..., :2], transl[..., :2])
        # no pops: per-frame joint motion stays that of a walk (the third difference too)
        step = np.linalg.norm(np.diff(after, axis=1), axis=-1)
        # (a locked swing is shorter in time, so a little faster, but never jumps)
        assert (step - np.linalg.norm(np.diff(before, axis=1), axis=-1)).max() < 0.08
        jerk = lambda x: np.linalg.norm(np.diff(x, 3, axis=1), axis=-1).mean()  # noqa: E731
        assert jerk(after[:, :, :22]) < 1.2 * jerk(before[:, :, :22])


def test_switched_off_and_tunable():
    _, rot, rest, transl = noisy_scene_bodies(2)
    valid = np.ones((2, 150), bool)
    strict = FootLockOptions(contact_speed_mps=0.05, release_speed_mps=0.1)
    _, _, few = lock_feet(rot, rest, transl, valid, np.full(2, 0.05), 30.0, strict)
    _, _, many = lock_feet(rot, rest, transl, valid, np.full(2, 0.05), 30.0)
    assert few.sum() < 0.5 * many.sum()


def test_fused_take_has_planted_feet_by_default(tmp_path):
    scene = make_scene(num_people=2, num_views=3, num_frames=90, seed=4)
    views = simulate_views(scene, "realistic", seed=4)
    take = fuse_views(views)
    assert take.meta["source"]["foot_lock"] is True
    back = read_take(write_take(tmp_path / "t.npz", take))
    assert back.foot_contact.shape == (take.num_people, 90, 2) and back.foot_contact.any()
    assert not back.foot_contact[~back.valid].any()
    locked = evaluate_take(take, scene)
    free = evaluate_take(fuse_views(views, options=FuseOptions(foot_lock=False)), scene)
    assert locked["foot_sliding"] < 0.5 * free["foot_sliding"]
    assert locked["foot_height"] < 0.005
    assert not fuse_views(views, options=FuseOptions(foot_lock=False)).foot_contact.any()
