"""OpenCV pinhole cameras as Blender camera parameters, in numpy (no bpy).

OpenCV: x_cam = R X + t with x right, y down, z forward; pixel (u, v) = (fx x/z + cx, fy y/z + cy)
and the centre of the top-left pixel is (0, 0). Blender: the camera looks down its local -Z with
+Y up; normalized view coordinates put pixel i on [i, i + 1), so OpenCV's cx, cy are shifted by
+0.5 px before they become Blender shifts.

Blender's frame for an image of W x H pixels with pixel aspect (pa_x, pa_y) is fitted to the
larger display dimension (W pa_x or H pa_y) over a sensor of `SENSOR_MM`; shifts are in units of
that fitted dimension. See docs/scene-builder.md for the derivation.
"""

import dataclasses

import numpy as np

from .rotations import make_sign_continuous, matrix_to_quaternion

SENSOR_MM = 36.0
OPENCV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0])  # camera axes: (x, y, z) -> (x, -y, -z)


@dataclasses.dataclass
class BlenderIntrinsics:
    """Per-view fixed settings plus per-timestep animated ones."""

    sensor_fit: str          # "HORIZONTAL" or "VERTICAL"
    sensor_mm: float         # sensor_width = sensor_height
    pixel_aspect: tuple      # (pa_x, pa_y) for scene.render
    lens: np.ndarray         # (T,) millimetres
    shift_x: np.ndarray      # (T,)
    shift_y: np.ndarray      # (T,)


def pixel_aspect_for(K):
    """(pa_x, pa_y) from fx/fy (one value per view: the median over timesteps of (..., 3, 3) K).

    Blender scales display pixels, so pa_x / pa_y = fy / fx; the larger one is 1.
    """
    K = np.asarray(K, dtype=np.float64).reshape(-1, 3, 3)
    ratio = float(np.median(K[:, 0, 0] / K[:, 1, 1]))  # fx / fy
    if ratio >= 1.0:
        return 1.0, ratio
    return 1.0 / ratio, 1.0


def opencv_to_blender_intrinsics(K, image_size, sensor_mm=SENSOR_MM):
    """Blender lens, sensor fit, shifts and pixel aspect reproducing K for an image (W, H).

    K (T, 3, 3) or (3, 3). fx/fy is taken per view (`pixel_aspect_for`): Blender has one pixel
    aspect per scene, so a view whose fx/fy drifts over time is matched exactly on the fitted axis
    and through that fixed aspect on the other.
    """
    K = np.asarray(K, dtype=np.float64).reshape(-1, 3, 3)
    width, height = (float(s) for s in image_size)
    pa_x, pa_y = pixel_aspect_for(K)
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    cx, cy = K[:, 0, 2] + 0.5, K[:, 1, 2] + 0.5  # OpenCV pixel centres -> Blender pixel edges
    if width * pa_x >= height * pa_y:
        fit = "HORIZONTAL"
        lens = fx * sensor_mm / width
        shift_x = (width / 2 - cx) / width
        shift_y = (cy - height / 2) / width * (pa_y / pa_x)
    else:
        fit = "VERTICAL"
        lens = fy * sensor_mm / height
        shift_x = (width / 2 - cx) / height * (pa_x / pa_y)
        shift_y = (cy - height / 2) / height
    return BlenderIntrinsics(fit, sensor_mm, (pa_x, pa_y), lens, shift_x, shift_y)


def blender_to_opencv_intrinsics(params, image_size):
    """Inverse of `opencv_to_blender_intrinsics`: (T, 3, 3) K from Blender's parameters."""
    width, height = (float(s) for s in image_size)
    pa_x, pa_y = params.pixel_aspect
    lens = np.asarray(params.lens, dtype=np.float64)
    K = np.zeros(lens.shape + (3, 3))
    if params.sensor_fit == "HORIZONTAL":
        fx = lens * width / params.sensor_mm
        fy = fx * pa_x / pa_y
        cx = width / 2 - params.shift_x * width
        cy = height / 2 + params.shift_y * width * (pa_x / pa_y)
    else:
        fy = lens * height / params.sensor_mm
        fx = fy * pa_y / pa_x
        cx = width / 2 - params.shift_x * height * (pa_y / pa_x)
        cy = height / 2 + params.shift_y * height
    K[..., 0, 0], K[..., 1, 1] = fx, fy
    K[..., 0, 2], K[..., 1, 2] = cx - 0.5, cy - 0.5
    K[..., 2, 2] = 1.0
    return K


def opencv_c2w_to_blender_world(c2w):
    """(..., 4, 4) OpenCV camera-to-world -> Blender camera matrix_world (same world frame)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    out = c2w.copy()
    out[..., :3, :3] = c2w[..., :3, :3] @ OPENCV_TO_BLENDER_CAMERA
    return out


def camera_location_quaternion(c2w):
    """(T, 4, 4) OpenCV c2w -> Blender location (T, 3) and sign-continuous quaternions (T, 4)."""
    world = opencv_c2w_to_blender_world(c2w)
    quat = make_sign_continuous(matrix_to_quaternion(world[..., :3, :3]), axis=0)
    return world[..., :3, 3], quat


def views_seeing(points, times, cam_K, cam_c2w, image_size, min_depth=0.3):
    """(N,) number of cameras whose image holds each world point at its timestep.

    points (N, 3), times (N,) int, cam_K (V, T, 3, 3), cam_c2w (V, T, 4, 4) OpenCV axes,
    image_size (V, 2) width, height. A point counts when it lies more than `min_depth` in
    front of the camera and projects inside the image.
    """
    points = np.asarray(points, dtype=np.float64)
    times = np.clip(np.asarray(times, dtype=np.int64), 0, cam_c2w.shape[1] - 1)
    c2w = np.asarray(cam_c2w, dtype=np.float64)[:, times]          # (V, N, 4, 4)
    K = np.asarray(cam_K, dtype=np.float64)[:, times]
    local = np.einsum("vnji,vnj->vni", c2w[..., :3, :3], points[None] - c2w[..., :3, 3])
    depth = local[..., 2]
    uvw = np.einsum("vnij,vnj->vni", K, local)
    uv = uvw[..., :2] / np.where(np.abs(uvw[..., 2:3]) > 1e-12, uvw[..., 2:3], 1e-12)
    size = np.asarray(image_size, dtype=np.float64)[:, None, :]
    inside = (depth > min_depth) & np.all((uv >= 0) & (uv <= size - 1), axis=-1)
    return inside.sum(axis=0)
