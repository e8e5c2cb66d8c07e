"""Pixel coordinates between the original image, Pi3X's resized input and Multi-HMR's padded square.

All maps here work in OpenCV pixel coordinates (the centre of the top-left pixel is (0, 0)). A
resize from width W to W' is then x' = (x + 0.5) * W'/W - 0.5, not x * W'/W. Multi-HMR itself
works in edge coordinates (patch centres at p*14 + 7, principal point S/2): `EDGE` converts.

Pi3X's input is the original resized to (W', H') without crop or pad. Multi-HMR's input is the
original resized to fit an S x S square keeping its aspect ratio, then centred on a black square,
with PIL's rounding (ImageOps.contain and ImageOps.pad).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class PixelMap:
    """Per-axis affine pixel map: x_dst = scale * x_src + offset (works on numpy and torch)."""

    scale: tuple
    offset: tuple

    def apply(self, xy):
        """(..., 2) points -> mapped points of the same type."""
        return xy * _like(xy, self.scale) + _like(xy, self.offset)

    def inverse(self):
        sx, sy = self.scale
        ox, oy = self.offset
        return PixelMap((1.0 / sx, 1.0 / sy), (-ox / sx, -oy / sy))

    def then(self, other):
        """The map that applies self, then other."""
        return PixelMap((self.scale[0] * other.scale[0], self.scale[1] * other.scale[1]),
                        (self.offset[0] * other.scale[0] + other.offset[0],
                         self.offset[1] * other.scale[1] + other.offset[1]))

    def matrix(self):
        """3x3 homogeneous matrix A with [x', y', 1] = A [x, y, 1]."""
        return np.array([[self.scale[0], 0.0, self.offset[0]],
                         [0.0, self.scale[1], self.offset[1]],
                         [0.0, 0.0, 1.0]])

    def map_intrinsics(self, K):
        """Intrinsics (..., 3, 3) of the source image -> those of the mapped image (A K)."""
        return _like(K, self.matrix()) @ K


def _like(ref, values):
    if isinstance(ref, np.ndarray):
        return np.asarray(values, dtype=ref.dtype)
    import torch

    return torch.as_tensor(values, dtype=ref.dtype, device=ref.device)


# Multi-HMR's edge coordinates (x_edge = x + 0.5) from OpenCV pixel-centre coordinates.
EDGE = PixelMap((1.0, 1.0), (0.5, 0.5))


def resize_map(src_wh, dst_wh):
    """Map of a plain resize from (w, h) to (w', h')."""
    sx, sy = dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1]
    return PixelMap((sx, sy), (0.5 * sx - 0.5, 0.5 * sy - 0.5))


def _round_half_even(x):
    return int(round(x))  # Python's round, as PIL uses it


def contain_size(src_wh, size):
    """(w, h) of PIL ImageOps.contain(image, (size, size)): fit inside, aspect ratio kept."""
    w, h = src_wh
    if w == h:
        return size, size
    if w > h:
        return size, _round_half_even(h / w * size)
    return _round_half_even(w / h * size), size


def pad_offset(content_wh, size):
    """Top-left corner (x, y) of the content in PIL ImageOps.pad's centred square."""
    return (_round_half_even((size - content_wh[0]) * 0.5),
            _round_half_even((size - content_wh[1]) * 0.5))


def multihmr_map(src_wh, size):
    """Original pixels -> Multi-HMR's padded S x S input (contain, then centre pad)."""
    content = contain_size(src_wh, size)
    x0, y0 = pad_offset(content, size)
    return resize_map(src_wh, content).then(PixelMap((1.0, 1.0), (float(x0), float(y0))))


def patch_centres(rows, cols, patch_size=14):
    """OpenCV pixel (x, y) of the centre of patch (row, col): (col + 0.5) * p - 0.5."""
    return np.stack([(np.asarray(cols) + 0.5) * patch_size - 0.5,
                     (np.asarray(rows) + 0.5) * patch_size - 0.5], axis=-1)


def patch_index(xy, grid_hw, patch_size=14):
    """(row, col) of the patch holding OpenCV pixel xy, clamped to the grid (torch or numpy)."""
    if isinstance(xy, np.ndarray):
        cell = np.floor((xy + 0.5) / patch_size).astype(np.int64)
        return (np.clip(cell[..., 1], 0, grid_hw[0] - 1), np.clip(cell[..., 0], 0, grid_hw[1] - 1))
    cell = ((xy + 0.5) / patch_size).floor().long()
    return cell[..., 1].clamp(0, grid_hw[0] - 1), cell[..., 0].clamp(0, grid_hw[1] - 1)
