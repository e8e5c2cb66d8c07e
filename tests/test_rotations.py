"""Rotation conversions and SO(3) means against scipy.spatial.transform.Rotation."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from chromm_addon.geometry import rotations as rot

PI = np.pi


def random_rotvecs(rng, n, max_angle=PI):
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    return axis * rng.uniform(0, max_angle, size=(n, 1))


def special_rotvecs(rng):
    """Angles where the formulas switch branches or lose precision: 0, tiny, around the
    small-angle thresholds, and near pi."""
    angles = [0.0, 1e-12, 1e-9, 1e-8, 9.9e-7, 1e-6, 1.01e-6, 1e-5, 1e-3, 0.5, 2.0, 3.0,
              PI - 1e-3, PI - 1e-6, PI - 1e-9]
    axes = rng.normal(size=(len(angles), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    axes[0:3] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    return axes * np.array(angles)[:, None]


def canon(q):
    """Quaternion sign with w >= 0 (for comparing up to the double cover)."""
    return np.where(q[..., :1] < 0, -q, q)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_axis_angle_to_matrix(rng):
    r = np.concatenate([random_rotvecs(rng, 500, 2 * PI), special_rotvecs(rng)])
    got = rot.axis_angle_to_matrix(r)
    np.testing.assert_allclose(got, Rotation.from_rotvec(r).as_matrix(), atol=1e-12)
    # Batched leading dimensions keep their shape.
    batch = r[:24].reshape(2, 3, 4, 3)
    assert rot.axis_angle_to_matrix(batch).shape == (2, 3, 4, 3, 3)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(batch).reshape(-1, 3, 3), got[:24], atol=0)


def test_matrix_to_axis_angle(rng):
    r = np.concatenate([random_rotvecs(rng, 500, PI - 1e-3), special_rotvecs(rng)])
    m = Rotation.from_rotvec(r).as_matrix()
    got = rot.matrix_to_axis_angle(m)
    want = Rotation.from_matrix(m).as_rotvec()
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(got, r, atol=1e-9)  # angle in [0, pi): the input comes back


def test_matrix_to_axis_angle_at_pi(rng):
    """At exactly pi, r and -r are the same rotation: compare rotations, and the angle."""
    axes = rng.normal(size=(50, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    axes[:3] = np.eye(3)
    m = Rotation.from_rotvec(axes * PI).as_matrix()
    got = rot.matrix_to_axis_angle(m)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), PI, atol=1e-7)
    np.testing.assert_allclose(Rotation.from_rotvec(got).as_matrix(), m, atol=1e-7)


def test_angles_beyond_pi_are_wrapped(rng):
    r = random_rotvecs(rng, 200, 2 * PI)
    back = rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(r))
    assert np.all(np.linalg.norm(back, axis=1) <= PI + 1e-12)
    np.testing.assert_allclose(back, Rotation.from_rotvec(r).as_rotvec(), atol=1e-9)


def test_matrix_to_quaternion(rng):
    r = np.concatenate([random_rotvecs(rng, 500), special_rotvecs(rng),
                        np.eye(3) * PI])  # the four branches of Shepperd's method all occur
    m = Rotation.from_rotvec(r).as_matrix()
    q = rot.matrix_to_quaternion(m)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    want = canon(Rotation.from_matrix(m).as_quat(scalar_first=True))
    at_pi = np.abs(want[:, 0]) < 1e-12  # w = 0: q and -q both have w >= 0
    np.testing.assert_allclose(q[~at_pi], want[~at_pi], atol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(q * want, axis=1)), 1.0, atol=1e-12)


def test_quaternion_to_matrix_any_norm(rng):
    q = rng.normal(size=(300, 4)) * rng.uniform(0.1, 10, size=(300, 1))
    want = Rotation.from_quat(q, scalar_first=True).as_matrix()
    np.testing.assert_allclose(rot.quaternion_to_matrix(q), want, atol=1e-12)
    np.testing.assert_allclose(rot.quaternion_to_matrix(-q), want, atol=1e-12)


def test_quaternion_axis_angle_pairs(rng):
    r = np.concatenate([random_rotvecs(rng, 300, PI - 1e-6), special_rotvecs(rng)])
    q = rot.axis_angle_to_quaternion(r)
    want = Rotation.from_rotvec(r).as_quat(scalar_first=True)
    np.testing.assert_allclose(q, want, atol=1e-12)
    np.testing.assert_allclose(rot.quaternion_to_axis_angle(q), r, atol=1e-9)
    # A quaternion with w < 0 or any norm is the same rotation.
    np.testing.assert_allclose(rot.quaternion_to_axis_angle(-3.0 * q), r, atol=1e-9)
    tiny = rot.quaternion_to_axis_angle(np.array([1.0, 1e-10, -2e-10, 3e-10]))
    np.testing.assert_allclose(tiny, [2e-10, -4e-10, 6e-10], rtol=1e-9)


def test_round_trips_through_all_representations(rng):
    r = random_rotvecs(rng, 300, PI - 1e-4)
    m = rot.axis_angle_to_matrix(r)
    np.testing.assert_allclose(rot.quaternion_to_matrix(rot.matrix_to_quaternion(m)), m, atol=1e-12)
    np.testing.assert_allclose(rot.quaternion_to_axis_angle(rot.axis_angle_to_quaternion(r)), r,
                               atol=1e-9)


def test_rotation_angle(rng):
    r = np.concatenate([random_rotvecs(rng, 300), special_rotvecs(rng)])
    m = rot.axis_angle_to_matrix(r)
    want = Rotation.from_matrix(m).magnitude()
    # arccos of the trace loses precision near 0 and pi (sqrt of the rounding error).
    np.testing.assert_allclose(rot.rotation_angle(m), want, atol=1e-7)


def test_make_sign_continuous(rng):
    # A smooth trajectory with random sign flips, 7 joints over 200 timesteps.
    t = np.linspace(0, 4, 200)[:, None, None]
    axes = rng.normal(size=(1, 7, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    q = Rotation.from_rotvec((axes * t * 2.5).reshape(-1, 3)).as_quat(scalar_first=True)
    q = canon(q.reshape(200, 7, 4))  # w >= 0 flips the sign where the angle passes pi
    flips = rng.random((200, 7, 1)) < 0.3
    noisy = np.where(flips, -q, q)
    out = rot.make_sign_continuous(noisy)
    assert np.all(np.sum(out[1:] * out[:-1], axis=-1) > 0)
    np.testing.assert_array_equal(out[0], noisy[0])
    # Every output quaternion is the same rotation as its input (only signs changed).
    np.testing.assert_allclose(np.abs(out), np.abs(noisy), atol=0)
    np.testing.assert_allclose(rot.quaternion_to_matrix(out), rot.quaternion_to_matrix(noisy),
                               atol=1e-12)
    # Along another axis: time second.
    out1 = rot.make_sign_continuous(np.swapaxes(noisy, 0, 1), axis=1)
    np.testing.assert_array_equal(out1, np.swapaxes(out, 0, 1))
    # Input left untouched; a single timestep is returned as is.
    assert rot.make_sign_continuous(noisy[:1]).tolist() == noisy[:1].tolist()


def test_rotation_6d_to_matrix(rng):
    m = Rotation.random(100, random_state=5).as_matrix()
    six = np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)
    np.testing.assert_allclose(rot.rotation_6d_to_matrix(six), m, atol=1e-12)
    noisy = rot.rotation_6d_to_matrix(six * 3 + rng.normal(scale=0.1, size=six.shape))
    np.testing.assert_allclose(noisy @ np.swapaxes(noisy, -1, -2),
                               np.broadcast_to(np.eye(3), (100, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(noisy), 1.0, atol=1e-12)
    # Gram-Schmidt keeps the first column's direction.
    a1n = rng.normal(size=(100, 3))
    out = rot.rotation_6d_to_matrix(np.concatenate([a1n, rng.normal(size=(100, 3))], -1))
    np.testing.assert_allclose(out[..., :, 0], a1n / np.linalg.norm(a1n, axis=1, keepdims=True),
                               atol=1e-12)


def karcher_residual(mean, mats, weights):
    """Weighted sum of log(mean^T R_i): zero at the geodesic mean."""
    logs = Rotation.from_matrix(np.swapaxes(mean, -1, -2) @ mats).as_rotvec()
    return np.sum(weights[:, None] * logs, axis=0)


@pytest.mark.parametrize("spread", [1e-3, 0.05, 0.2])
def test_mean_rotation_against_scipy(rng, spread):
    center = Rotation.random(random_state=7)
    offsets = Rotation.from_rotvec(rng.normal(scale=spread, size=(20, 3)))
    mats = (center * offsets).as_matrix()
    weights = rng.uniform(0.1, 2.0, size=20)
    for w in (None, weights):
        got = rot.mean_rotation(mats, weights=w)
        ww = np.ones(20) if w is None else w
        # scipy's mean is the quaternion (chordal) L2 mean; it agrees with the geodesic mean to
        # third order in the spread (measured: 0.26 spread^3 at all three spreads).
        want = Rotation.from_matrix(mats).mean(weights=w).as_matrix()
        assert Rotation.from_matrix(got.T @ want).magnitude() < 0.5 * spread**3
        np.testing.assert_allclose(karcher_residual(got, mats, ww), 0.0, atol=1e-9)
        np.testing.assert_allclose(got @ got.T, np.eye(3), atol=1e-12)


def test_mean_rotation_weights_and_axes(rng):
    a, b = Rotation.from_rotvec([0, 0, 0.0]), Rotation.from_rotvec([0, 0, 0.6])
    mats = np.stack([a.as_matrix(), b.as_matrix()])
    # Geodesic weighted mean of two rotations about one axis: angle is the weighted average.
    got = rot.mean_rotation(mats, weights=[1.0, 3.0])
    np.testing.assert_allclose(Rotation.from_matrix(got).as_rotvec(), [0, 0, 0.45], atol=1e-10)
    # Zero weight ignores a rotation entirely.
    far = Rotation.from_rotvec([2.0, 0, 0]).as_matrix()
    got = rot.mean_rotation(np.stack([b.as_matrix(), far]), weights=[1.0, 0.0])
    np.testing.assert_allclose(got, b.as_matrix(), atol=1e-12)
    # Batches: 6 sets of 5 rotations, averaged along axis 1, equal the per-set means.
    sets = (Rotation.random(30, random_state=3)
            * Rotation.from_rotvec(rng.normal(scale=0.1, size=(30, 3))))
    sets = sets.as_matrix().reshape(6, 5, 3, 3)
    w = rng.uniform(0.5, 1.5, size=5)
    batched = rot.mean_rotation(sets, weights=w, axis=1)
    assert batched.shape == (6, 3, 3)
    for i in range(6):
        np.testing.assert_allclose(batched[i], rot.mean_rotation(sets[i], weights=w), atol=1e-12)
    # Per-element weights (n, batch) weight each set separately.
    w2 = rng.uniform(0.5, 1.5, size=(5, 6))
    batched2 = rot.mean_rotation(np.swapaxes(sets, 0, 1), weights=w2)
    for i in range(6):
        np.testing.assert_allclose(batched2[i], rot.mean_rotation(sets[i], weights=w2[:, i]),
                                   atol=1e-12)


def test_mean_of_identical_rotations_is_that_rotation():
    m = Rotation.random(random_state=11).as_matrix()
    np.testing.assert_allclose(rot.mean_rotation(np.stack([m] * 4)), m, atol=1e-12)


def test_project_to_rotation(rng):
    m = Rotation.random(200, random_state=9).as_matrix()
    noisy = m + rng.normal(scale=0.05, size=m.shape)
    got = rot.project_to_rotation(noisy)
    np.testing.assert_allclose(got @ np.swapaxes(got, -1, -2), np.broadcast_to(np.eye(3), m.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=1e-12)
    # scipy's from_matrix also finds the rotation closest to a non-orthogonal matrix.
    np.testing.assert_allclose(got, Rotation.from_matrix(noisy).as_matrix(), atol=1e-9)
    # A reflection is projected to a proper rotation, never a mirror.
    mirror = np.diag([1.0, 1.0, -1.0]) @ m[0]
    assert np.linalg.det(rot.project_to_rotation(mirror)) == pytest.approx(1.0)
