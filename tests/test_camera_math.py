"""OpenCV -> Blender camera parameters in numpy (no bpy); the bpy projection test is
test_blender_camera.py."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from chromm_addon.geometry.camera import (
    SENSOR_MM, blender_to_opencv_intrinsics, camera_location_quaternion,
    opencv_c2w_to_blender_world, opencv_to_blender_intrinsics, pixel_aspect_for)


def _K(fx, fy, cx, cy):
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


def test_centred_square_pixels_give_plain_lens_and_half_pixel_shift():
    # cx = (W - 1) / 2 is the image centre in OpenCV's pixel-centre convention: no shift.
    p = opencv_to_blender_intrinsics(_K(800, 800, 319.5, 239.5), (640, 480))
    assert p.sensor_fit == "HORIZONTAL" and p.pixel_aspect == (1.0, 1.0)
    np.testing.assert_allclose(p.lens, [800 * SENSOR_MM / 640])
    np.testing.assert_allclose([p.shift_x[0], p.shift_y[0]], [0.0, 0.0], atol=1e-15)
    # cx = W / 2 is half a pixel right of the centre: shift of -0.5 px over the width.
    p = opencv_to_blender_intrinsics(_K(800, 800, 320, 240), (640, 480))
    np.testing.assert_allclose([p.shift_x[0], p.shift_y[0]], [-0.5 / 640, 0.5 / 640])


def test_portrait_fits_vertically():
    p = opencv_to_blender_intrinsics(_K(900, 900, 200, 700), (720, 1280))
    assert p.sensor_fit == "VERTICAL"
    np.testing.assert_allclose(p.lens, [900 * SENSOR_MM / 1280])
    np.testing.assert_allclose(p.shift_y, [(700.5 - 640) / 1280])
    np.testing.assert_allclose(p.shift_x, [(360 - 200.5) / 1280])


@pytest.mark.parametrize("fx, fy", [(700, 650), (650, 700)])
def test_pixel_aspect_larger_side_is_one(fx, fy):
    pa_x, pa_y = pixel_aspect_for(_K(fx, fy, 0, 0))
    assert max(pa_x, pa_y) >= 1.0 and min(pa_x, pa_y) == 1.0
    assert pa_x / pa_y == pytest.approx(fy / fx)


@pytest.mark.parametrize("size", [(640, 480), (480, 720), (1000, 1000)])
@pytest.mark.parametrize("fx, fy", [(600, 600), (620, 540), (500, 580)])
def test_intrinsics_round_trip(size, fx, fy):
    rng = np.random.default_rng(3)
    T = 5
    K = np.stack([_K(fx * s, fy * s, *rng.uniform(0.2, 0.8, 2) * size) for s in rng.uniform(0.8, 1.2, T)])
    p = opencv_to_blender_intrinsics(K, size)
    np.testing.assert_allclose(blender_to_opencv_intrinsics(p, size), K, rtol=1e-12, atol=1e-9)


def test_c2w_maps_opencv_axes_to_blender_camera_axes():
    rng = np.random.default_rng(0)
    R = Rotation.random(random_state=1).as_matrix()
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = R, rng.normal(size=3)
    world = opencv_c2w_to_blender_world(c2w)
    # Blender looks down its -Z and has +Y up; OpenCV looks down +z with +y down.
    np.testing.assert_allclose(world[:3, :3] @ [0, 0, -1], R @ [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(world[:3, :3] @ [0, 1, 0], R @ [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(world[:3, 3], c2w[:3, 3])


def test_camera_quaternions_match_scipy_and_are_sign_continuous():
    T = 50
    rots = Rotation.from_rotvec(np.linspace(0, 3 * np.pi, T)[:, None] * np.array([0.3, 0.9, 0.2]))
    c2w = np.tile(np.eye(4), (T, 1, 1))
    c2w[:, :3, :3] = rots.as_matrix()
    c2w[:, :3, 3] = np.arange(T)[:, None] * 0.1
    loc, quat = camera_location_quaternion(c2w)
    flip = np.diag([1.0, -1.0, -1.0])
    ref = Rotation.from_matrix(rots.as_matrix() @ flip).as_quat()  # scipy: (x, y, z, w)
    ref = np.concatenate([ref[:, 3:], ref[:, :3]], axis=1)
    same = np.abs(np.sum(ref * quat, axis=1))
    np.testing.assert_allclose(same, 1.0, atol=1e-12)  # equal up to sign
    assert np.all(np.sum(quat[1:] * quat[:-1], axis=1) > 0)
    np.testing.assert_allclose(loc, c2w[:, :3, 3])


def test_views_seeing_counts_cameras_like_opencv_projection():
    import cv2

    from chromm_addon.evaluation.synthetic import make_scene
    from chromm_addon.geometry.camera import views_seeing

    scene = make_scene(num_people=0, num_views=3, num_frames=2, seed=4)
    rng = np.random.default_rng(0)
    points = rng.uniform([-9, -9, -1], [9, 9, 3], size=(400, 3))
    times = rng.integers(0, 2, size=400)
    expected = np.zeros(400, int)
    for v in range(3):
        for i, (p, t) in enumerate(zip(points, times)):
            w2c = np.linalg.inv(scene.cam_c2w[v, t])
            depth = (w2c[:3, :3] @ p + w2c[:3, 3])[2]
            rvec, _ = cv2.Rodrigues(w2c[:3, :3])
            uv, _ = cv2.projectPoints(p[None], rvec, w2c[:3, 3], scene.cam_K[v, t], None)
            w, h = scene.image_size[v]
            expected[i] += depth > 0.3 and 0 <= uv[0, 0, 0] <= w - 1 and 0 <= uv[0, 0, 1] <= h - 1
    got = views_seeing(points, times, scene.cam_K, scene.cam_c2w, scene.image_size)
    np.testing.assert_array_equal(got, expected)
    assert 0 < (got == 0).sum() < 400 and (got >= 2).any()
