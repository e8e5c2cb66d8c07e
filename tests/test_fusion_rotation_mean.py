"""Rotation averaging for fusion: quaternion Karcher mean, robust to one bad view."""

import numpy as np

from chromm_addon.geometry.rotations import (axis_angle_to_matrix, axis_angle_to_quaternion,
                                             matrix_to_quaternion, mean_rotation,
                                             quaternion_to_matrix, rotation_angle)
from chromm_addon.fusion.fusion import FusionOptions, _robust_mean_rotation
from chromm_addon.geometry.rotations import karcher_mean_quat, quat_multiply


def test_quat_multiply_is_matrix_product():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 20, 3))
    q = quat_multiply(axis_angle_to_quaternion(a), axis_angle_to_quaternion(b))
    np.testing.assert_allclose(quaternion_to_matrix(q),
                               axis_angle_to_matrix(a) @ axis_angle_to_matrix(b), atol=1e-12)


def test_karcher_mean_equals_the_geometry_module_mean():
    rng = np.random.default_rng(1)
    centre = rng.normal(size=(7, 3))
    samples = axis_angle_to_matrix(centre[None] * 0 + rng.normal(scale=0.4, size=(5, 7, 3))) \
        @ axis_angle_to_matrix(centre)[None]
    weights = rng.uniform(0.2, 1.0, size=(5, 7))
    quats = matrix_to_quaternion(samples) * rng.choice([-1.0, 1.0], size=(5, 7, 1))  # any sign
    got = quaternion_to_matrix(karcher_mean_quat(quats, weights, iters=30, tol=1e-13))
    ref = mean_rotation(samples, weights=weights, axis=0, iters=30)
    np.testing.assert_allclose(got, ref, atol=1e-9)


def test_zero_weight_samples_are_ignored():
    rng = np.random.default_rng(2)
    good = rng.normal(scale=0.2, size=(3, 3))
    bad = np.array([[2.5, 0.0, 0.0]])
    quats = axis_angle_to_quaternion(np.concatenate([good, bad]))
    with_bad = karcher_mean_quat(quats, np.array([1, 1, 1, 0.0]))
    without = karcher_mean_quat(quats[:3], np.ones(3))
    np.testing.assert_allclose(np.abs(np.sum(with_bad * without)), 1.0, atol=1e-12)


def test_one_bad_view_does_not_spoil_the_mean():
    rng = np.random.default_rng(3)
    truth = axis_angle_to_matrix(np.array([0.3, -1.2, 0.5]))
    noise = axis_angle_to_matrix(rng.normal(scale=0.05, size=(4, 3)))
    views = truth[None] @ noise
    views[2] = axis_angle_to_matrix(np.array([0.0, 2.0, 0.0])) @ truth  # a flipped estimate
    quats = matrix_to_quaternion(views)
    robust = quaternion_to_matrix(_robust_mean_rotation(quats, np.ones(4), FusionOptions()))
    plain = quaternion_to_matrix(karcher_mean_quat(quats, np.ones(4)))
    good = quaternion_to_matrix(karcher_mean_quat(quats[[0, 1, 3]], np.ones(3)))
    np.testing.assert_allclose(robust, good, atol=1e-9)
    assert rotation_angle(robust.T @ truth) < np.deg2rad(8)
    assert rotation_angle(plain.T @ truth) > np.deg2rad(20)
