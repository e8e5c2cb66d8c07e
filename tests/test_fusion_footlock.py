"""Foot contact and locking: detected like the ground truth, planted feet do not move and stand
on the floor, only the legs (and the root height) change, no pops."""

import numpy as np

from chromm_addon.body.lbs import forward_kinematics
from chromm_addon.evaluation.evaluate import evaluate_take
from chromm_addon.evaluation.simulate import simulate_views
from chromm_addon.evaluation.synthetic import DEFAULT_FOOT_CLEARANCE, make_scene
from chromm_addon.fusion.footlock import FootLockOptions, clean_runs, hysteresis, lock_feet, split_travelling
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
    # two-sided: the loose (leave) bound holds before an enter frame as after it, so a contact
    # starts where the foot first came below the loose bounds, not late at the strict ones
    np.testing.assert_array_equal(hysteresis(enter, leave), [1, 1, 1, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(hysteresis(enter & False, leave), [0] * 8)
    mask = np.array([1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0], bool)
    np.testing.assert_array_equal(clean_runs(mask, min_on=2, min_off=2),
                                  [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])


def test_a_contact_that_travels_is_split_where_the_foot_moves_fastest():
    # two plants 0.7 m apart joined by a slow, smeared step (as a wide filter makes of a walk)
    x = np.r_[np.zeros(15), np.linspace(0, 0.7, 8), np.full(15, 0.7)]
    xy = np.stack([x, np.zeros_like(x)], -1)
    speed = np.abs(np.gradient(x)) * 30
    mask = np.ones(len(x), bool)
    out = split_travelling(mask, xy, speed, 0.15)
    runs = [(int(a), int(b)) for a, b in zip(np.flatnonzero(np.diff(np.r_[0, out, 0]) == 1),
                                             np.flatnonzero(np.diff(np.r_[0, out, 0]) == -1))]
    assert len(runs) >= 2 and out[:15].all() and out[23:].all()
    for a, b in runs:
        assert np.ptp(x[a:b]) <= 0.3
    np.testing.assert_array_equal(split_travelling(mask[:15], xy[:15], speed[:15], 0.15), mask[:15])


def test_locked_feet_are_planted_on_the_floor_and_only_legs_change():
    for seed in (0, 1):
        scene, rot, rest, transl = noisy_scene_bodies(seed)
        valid = np.ones((2, 150), bool)
        locked, new_transl, contact = lock_feet(rot, rest, transl, valid,
                                                np.full(2, DEFAULT_FOOT_CLEARANCE), scene.fps)
        gt = scene.foot_contact
        recall = (contact & gt).sum() / gt.sum()
        precision = (contact & gt).sum() / contact.sum()
        assert recall > 0.95 and precision > 0.9
        # the false contacts are the edges of true ones (the foot slowing down to land, lifting
        # off), never a swing: every detected frame is within 3 frames (0.1 s) of a true contact
        near = gt.copy()
        for shift in (1, 2, 3):
            near[:, shift:] |= gt[:, :-shift]
            near[:, :-shift] |= gt[:, shift:]
        assert not (contact & ~near).any()
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


def test_two_views_keep_planted_feet_and_smooth_motion():
    """4 people of one shape seen by 2 views: people are missed in both views now and then, so
    their tracks have 1-3 frame gaps. Filtering and contact run across those gaps (not a new
    segment at each), and the feet stay planted on the ground-truth contact frames. The root,
    derived from the filtered head through the filtered spine, is filtered once more: jitter
    within 1.5x the ground truth's."""
    scene = make_scene(num_people=4, num_views=2, num_frames=150, seed=1, same_shape=True)
    views = simulate_views(scene, "realistic", seed=1001)
    # The simulated views are in sync; this test is about the feet, so motion sync stays out of it
    # (on this seed it finds a 1-frame offset: a limit documented in docs/sync.md).
    synced = FuseOptions(sync="none")
    cache = {}
    take = fuse_views(views, options=synced, cache=cache)
    assert (np.diff(take.valid.astype(int), axis=1) == -1).sum() > 5      # gaps there are
    bridged = evaluate_take(take, scene)
    split = evaluate_take(fuse_views(views, options=FuseOptions(sync="none", smooth_max_gap_s=0), cache=cache), scene)
    assert bridged["foot_sliding"] < 0.002 and bridged["foot_sliding"] < 0.5 * split["foot_sliding"]
    assert bridged["w_mpjpe"] <= split["w_mpjpe"]
    assert not take.foot_contact[~take.valid].any()
    assert bridged["jitter"] < 1.5 * bridged["gt_jitter"]
    unfiltered_root = evaluate_take(fuse_views(views, options=FuseOptions(sync="none", smooth_root=False), cache=cache), scene)
    assert bridged["jitter"] < 0.85 * unfiltered_root["jitter"]
    assert bridged["w_mpjpe"] < 1.02 * unfiltered_root["w_mpjpe"]
