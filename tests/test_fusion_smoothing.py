"""Zero-phase smoothing: no lag on smooth motion, less jitter, never across gaps."""

import numpy as np

from chromm_addon.fusion.smoothing import segments, smooth_rotations, smooth_values, smoothing_matrix
from chromm_addon.geometry.rotations import axis_angle_to_matrix, rotation_angle


def test_quadratic_motion_passes_unchanged_including_the_ends():
    t = np.arange(40, dtype=np.float64)
    for s in (smoothing_matrix(40, 5), smoothing_matrix(7, 5)):
        n = len(s)
        x = 0.3 + 0.2 * t[:n] - 0.01 * t[:n] ** 2
        np.testing.assert_allclose(s @ x, x, atol=1e-10)  # no lag, no shrinkage at the ends


def test_noise_is_reduced():
    rng = np.random.default_rng(0)
    t = np.arange(200) / 30.0
    truth = np.stack([np.sin(t), np.cos(0.5 * t), 0.1 * t], -1)
    noisy = truth + rng.normal(scale=0.02, size=truth.shape)
    smoothed = smooth_values(noisy, np.ones(200, bool), 4)
    assert np.abs(smoothed - truth).mean() < 0.6 * np.abs(noisy - truth).mean()


def test_gaps_are_not_bridged():
    valid = np.array([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1], bool)
    assert segments(valid) == [(0, 4), (6, 11)]
    x = np.where(valid, np.r_[np.zeros(4), 0, 0, np.ones(5)], 99.0)
    out = smooth_values(x[:, None], valid, 3)[:, 0]
    np.testing.assert_allclose(out[:4], 0, atol=1e-12)
    np.testing.assert_allclose(out[6:], 1, atol=1e-12)
    assert out[4] == out[5] == 99.0


def test_rotations_stay_rotations_and_follow_a_steady_turn():
    angles = np.linspace(0, 3.0, 60)  # a steady turn through more than 90 degrees
    rot = axis_angle_to_matrix(np.stack([np.zeros(60), np.zeros(60), angles], -1))
    out = smooth_rotations(rot, np.ones(60, bool), 4)
    np.testing.assert_allclose(out @ np.swapaxes(out, -1, -2), np.broadcast_to(np.eye(3), out.shape),
                               atol=1e-12)
    assert rotation_angle(np.swapaxes(out, -1, -2) @ rot).max() < np.deg2rad(0.5)


def test_banded_application_equals_the_dense_matrix():
    rng = np.random.default_rng(1)
    for length in (3, 7, 40):
        x = rng.normal(size=(length, 4))
        dense = smoothing_matrix(length, 5) @ x
        np.testing.assert_allclose(smooth_values(x, np.ones(length, bool), 5), dense, atol=1e-12)


def test_one_euro_is_causal_smooths_noise_and_keeps_constants():
    from chromm_addon.fusion.smoothing import one_euro

    rng = np.random.default_rng(3)
    t = np.arange(200) / 30.0
    truth = np.stack([np.sin(t), np.cos(0.5 * t)], -1)
    noisy = truth + rng.normal(scale=0.05, size=truth.shape)
    out = one_euro(noisy, np.ones(200, bool), 30.0)
    jerk = lambda x: np.abs(np.diff(x, 3, axis=0)).mean()  # noqa: E731
    assert jerk(out) < 0.2 * jerk(noisy)
    # it lags: on this motion the error grows (why the default filter is the zero-phase one)
    assert np.abs(out - truth).mean() > np.abs(smooth_values(noisy, np.ones(200, bool), 4) - truth).mean()
    changed = noisy.copy()
    changed[150:] += 1.0
    np.testing.assert_array_equal(one_euro(changed, np.ones(200, bool), 30.0)[:150], out[:150])
    np.testing.assert_allclose(one_euro(np.full((50, 3), 2.5), np.ones(50, bool), 30.0), 2.5)


def test_tripod_cameras_become_one_pose_moving_ones_are_filtered():
    from chromm_addon.evaluation.synthetic import look_at_c2w
    from chromm_addon.fusion.smoothing import camera_trajectories
    from chromm_addon.geometry.rotations import axis_angle_to_matrix

    rng = np.random.default_rng(4)
    T = 120
    still = np.broadcast_to(look_at_c2w([6.0, 0, 1.5], [0, 0, 1.0]), (T, 4, 4))
    pan = look_at_c2w(np.stack([6 * np.cos(0.01 * np.arange(T)), 6 * np.sin(0.01 * np.arange(T)),
                                np.full(T, 1.5)], -1), np.zeros((T, 3)))
    truth = np.stack([still, pan])
    noisy = truth.copy()
    noisy[..., :3, 3] += rng.normal(scale=0.005, size=(2, T, 3))
    noisy[..., :3, :3] = axis_angle_to_matrix(rng.normal(scale=np.deg2rad(0.1), size=(2, T, 3))) @ noisy[..., :3, :3]
    out, static = camera_trajectories(noisy, 30.0)
    assert list(static) == [True, False]
    assert np.ptp(out[0], axis=0).max() == 0
    np.testing.assert_allclose(out[0, 0, :3, 3], truth[0, 0, :3, 3], atol=0.003)
    err = lambda c: np.linalg.norm(c[1, :, :3, 3] - truth[1, :, :3, 3], axis=-1).mean()  # noqa: E731
    assert err(out) < 0.6 * err(noisy)


def test_short_gaps_are_bridged_on_the_present_samples_only():
    from chromm_addon.fusion.smoothing import bridge_gaps

    valid = np.ones(60, bool)
    valid[[10, 25, 26, 40, 41, 42, 43, 44, 45]] = False   # gaps of 1, 2 and 6 steps
    np.testing.assert_array_equal(bridge_gaps(valid, 2), np.r_[np.ones(40, bool), np.zeros(6, bool),
                                                               np.ones(14, bool)])
    t = np.arange(60, dtype=np.float64)
    x = 0.3 + 0.2 * t - 0.01 * t**2
    held = np.where(valid, x, 99.0)[:, None]           # what stands in a gap must not count
    out = smooth_values(held, valid, 5, max_gap=2)[:, 0]
    # exact for quadratic motion, gaps filled with it; the long gap still ends the segment
    np.testing.assert_allclose(out[:40], x[:40], atol=1e-9)
    np.testing.assert_allclose(out[46:], x[46:], atol=1e-9)
    assert (out[40:46] == 99.0).all()


def test_bridging_a_gap_filters_its_neighbours_like_the_rest():
    """Without bridging, every missed frame splits the track: the frames around it get one-sided
    fits (extrapolations, larger errors); bridged, they are filtered about as well as anywhere."""
    rng = np.random.default_rng(5)
    t = np.arange(300) / 30.0
    truth = np.stack([np.sin(1.3 * t), np.cos(0.7 * t), 0.2 * t], -1)
    noisy = truth + rng.normal(scale=0.03, size=truth.shape)
    valid = np.ones(300, bool)
    valid[20::25] = False                                # a missed frame every 25
    near = np.zeros(300, bool)
    for g in np.flatnonzero(~valid):
        near[max(g - 6, 0):g + 7] = True
    near &= valid
    err = lambda out, mask: np.linalg.norm(out - truth, axis=-1)[mask].mean()  # noqa: E731
    split = smooth_values(noisy, valid, 8)
    bridged = smooth_values(noisy, valid, 8, max_gap=2)
    assert err(bridged, near) < 0.8 * err(split, near)
    assert err(bridged, near) < 1.2 * err(bridged, valid & ~near)
