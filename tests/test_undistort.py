"""Undistortion: a scene rendered through a distorted lens (each pixel's ray by OpenCV's model)
remaps to the scene rendered through the pinhole camera the take reports."""
import cv2
import numpy as np
import pytest

from chromm_addon.backend.undistort import Undistorter, undistort_frames, undistorters_for
from chromm_addon.io.cameras import KnownCamera

W, H = 320, 240
K = np.array([[170.0, 0.0, 161.0], [0.0, 168.0, 118.5], [0.0, 0.0, 1.0]])
LENSES = {
    "pinhole": np.array([-0.28, 0.09, 0.0008, -0.0005, -0.012, 0.0, 0.0, 0.0]),
    "fisheye": np.array([0.05, -0.01, 0.004, -0.001]),
}


def pattern(x, y):
    """A smooth texture on the plane z = 1, as a function of the ray (x/z, y/z)."""
    return 127.5 + 60 * np.sin(6 * x) * np.cos(5 * y) + 50 * np.cos(9 * x + 2 * y)


def render_distorted(model, dist):
    """Every pixel's ray through the lens (OpenCV's own inverse of its model), then the texture."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    pts = np.stack([u, v], -1).reshape(-1, 1, 2)
    if model == "fisheye":
        rays = cv2.fisheye.undistortPoints(pts, K, dist.reshape(4, 1))
    else:
        rays = cv2.undistortPointsIter(pts, K, dist, None, None,
                                       (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-10))
    rays = rays.reshape(H, W, 2)
    img = pattern(rays[..., 0], rays[..., 1])
    return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def render_pinhole(Kp):
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    x, y = (u - Kp[0, 2]) / Kp[0, 0], (v - Kp[1, 2]) / Kp[1, 1]
    return np.clip(pattern(x, y), 0, 255)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_undistorted_frame_is_the_pinhole_view_of_the_same_scene(model):
    dist = LENSES[model]
    u = Undistorter(K, model, dist, (W, H))
    out = u(render_distorted(model, dist))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    expected = render_pinhole(u.K)
    # inside the valid area (away from the black border of the pinhole model's crop)
    valid = out[..., 0] > 0
    valid[:8], valid[-8:], valid[:, :8], valid[:, -8:] = False, False, False, False
    assert valid.mean() > 0.6
    err = np.abs(out[..., 0].astype(float) - expected)[valid]
    assert np.median(err) < 2.0 and np.percentile(err, 99) < 8.0
    # without undistortion the same comparison is far off (the lens matters)
    raw = render_distorted(model, dist)[..., 0].astype(float)
    assert np.median(np.abs(raw - expected)[valid]) > 3 * max(np.median(err), 1.0)
    if model == "pinhole":
        np.testing.assert_array_equal(u.K, K)      # Blender's undistorted clip keeps K
    else:
        assert u.K[0, 0] < K[0, 0] * 1.5 and abs(u.K[0, 2] - K[0, 2]) < 1.0


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_undistorted_points_are_the_pinhole_projection(model):
    dist = LENSES[model]
    u = Undistorter(K, model, dist, (W, H))
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(-0.5, 0.5, 50), rng.uniform(-0.4, 0.4, 50), rng.uniform(2, 6, 50)])
    if model == "fisheye":
        distorted = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, dist.reshape(4, 1))[0]
    else:
        distorted = cv2.projectPoints(X, np.zeros(3), np.zeros(3), K, dist)[0]
    pinhole = cv2.projectPoints(X, np.zeros(3), np.zeros(3), u.K, np.zeros(5))[0].reshape(-1, 2)
    np.testing.assert_allclose(u.undistort_points(distorted.reshape(-1, 2)), pinhole, atol=1e-3)


def test_only_clips_with_a_known_lens_are_remapped():
    cams = [KnownCamera("a", K=K, model="fisheye", dist=LENSES["fisheye"]), KnownCamera("b", K=K), None]
    us = undistorters_for(cams, [(W, H)] * 3)
    assert us[0] is not None and us[1] is None and us[2] is None
    frames = [render_distorted("fisheye", LENSES["fisheye"])] * 3
    out = undistort_frames(frames, us)
    assert out[1] is frames[1] and out[2] is frames[2] and not np.array_equal(out[0], frames[0])
