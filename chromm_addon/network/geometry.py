"""Camera geometry on torch tensors, for the network's outputs.

Pixel convention: OpenCV, the centre of the top-left pixel is (0, 0), so an image W pixels wide
spans u in [-0.5, W - 0.5] and its centre is at u = (W - 1) / 2. Every function takes batched
inputs (any leading dimensions) and keeps the device and dtype, without host round trips.
"""
import math

import torch


def recover_intrinsics_from_rays(rays):
    """Pinhole intrinsics (..., 3, 3) that best explain per-pixel rays (..., H, W, 3).

    The principal point is fixed at the image centre ((W - 1) / 2, (H - 1) / 2); fx and fy are
    the least-squares fits of u - cx = fx * x / z and v - cy = fy * y / z over all pixels (as
    Pi3X's `recover_intrinsic_from_rays_d` with a centred principal point). Rays need not be unit.
    """
    *batch, height, width, _ = rays.shape
    dtype = rays.dtype if rays.dtype in (torch.float32, torch.float64) else torch.float32
    rays = rays.to(dtype)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    u = torch.arange(width, device=rays.device, dtype=dtype) - cx
    v = torch.arange(height, device=rays.device, dtype=dtype) - cy
    z = rays[..., 2].abs() + 1e-10
    x_proj, y_proj = rays[..., 0] / z, rays[..., 1] / z                  # (..., H, W)
    fx = (x_proj * u).sum(dim=(-2, -1)) / (x_proj * x_proj).sum(dim=(-2, -1))
    fy = (y_proj * v[:, None]).sum(dim=(-2, -1)) / (y_proj * y_proj).sum(dim=(-2, -1))
    K = torch.zeros(*batch, 3, 3, device=rays.device, dtype=dtype)
    K[..., 0, 0] = fx
    K[..., 1, 1] = fy
    K[..., 0, 2] = cx
    K[..., 1, 2] = cy
    K[..., 2, 2] = 1.0
    return K


def rescale_intrinsics(K, from_size, to_size):
    """Intrinsics of the same camera after resizing its image from (w, h) `from_size` to `to_size`.

    Pixel edges scale, pixel centres do not: c' = (c + 0.5) * s - 0.5, f' = f * s, per axis.
    """
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    K = K.clone()
    K[..., 0, :] = K[..., 0, :] * sx
    K[..., 1, :] = K[..., 1, :] * sy
    K[..., 0, 2] += 0.5 * sx - 0.5
    K[..., 1, 2] += 0.5 * sy - 0.5
    return K


def unproject(K, pixels, depth):
    """Camera-frame points (..., 3) of pixels (..., 2) at z-depth (...,), OpenCV axes.

    K broadcasts against the leading dimensions of `pixels`, e.g. K (V, 1, 3, 3) for pixels (V, P, 2).
    """
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    cx, cy = K[..., 0, 2], K[..., 1, 2]
    x = (pixels[..., 0] - cx) / fx * depth
    y = (pixels[..., 1] - cy) / fy * depth
    return torch.stack([x, y, depth.expand_as(x)], dim=-1)


def project(K, points):
    """Pixels (..., 2) of camera-frame points (..., 3) (inverse of `unproject`)."""
    z = points[..., 2]
    u = K[..., 0, 0] * points[..., 0] / z + K[..., 0, 2]
    v = K[..., 1, 1] * points[..., 1] / z + K[..., 1, 2]
    return torch.stack([u, v], dim=-1)


def focal_from_fov(fov_degrees, size):
    """Focal length in pixels for a field of view (degrees) across `size` pixels."""
    return size / (2.0 * math.tan(math.radians(fov_degrees) / 2.0))


def fov_from_focal(focal, size):
    """Field of view in degrees across `size` pixels for a focal length in pixels."""
    return math.degrees(2.0 * math.atan(size / (2.0 * focal)))
