"""Frames -> Multi-HMR's input: fit inside an S x S square keeping the aspect ratio, centre it on
black (PIL's ImageOps.contain + ImageOps.pad, as upstream's `open_image`), RGB in [0, 1].

The resize is bicubic with antialiasing (torch's implementation of PIL's filter), rounded to
8 bits as PIL's output is. Geometry comes from `image_maps.multihmr_map`; `padded_intrinsics`
and `head_to_original` convert between the original frame (OpenCV pixel centres) and Multi-HMR's
padded square (edge coordinates, see multihmr.py).
"""
import numpy as np
import torch
import torch.nn.functional as F

from .image_maps import EDGE, contain_size, multihmr_map, pad_offset


def letterbox_frames(frames, size=896, device=None):
    """Frames of one size, uint8 RGB (B, H, W, 3) or a list of (H, W, 3) -> (B, 3, S, S) float32."""
    frames = np.stack(frames) if isinstance(frames, (list, tuple)) else np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (B, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    content = contain_size((width, height), size)
    x0, y0 = pad_offset(content, size)
    x = torch.as_tensor(frames, device=device).permute(0, 3, 1, 2).float()
    if content != (width, height):
        x = F.interpolate(x, size=(content[1], content[0]), mode="bicubic", antialias=True, align_corners=False)
        x = x.round().clamp(0, 255)
    out = x.new_zeros(x.shape[0], 3, size, size)
    out[:, :, y0:y0 + content[1], x0:x0 + content[0]] = x
    return out / 255.0


def padded_intrinsics(K, frame_wh, size=896):
    """Intrinsics (..., 3, 3) of the original frame (OpenCV) -> Multi-HMR's K for the padded square."""
    return multihmr_map(frame_wh, size).then(EDGE).map_intrinsics(K)


def head_to_original(points, frame_wh, size=896):
    """Multi-HMR pixels (..., 2) in the padded square -> OpenCV pixels of the original frame."""
    return multihmr_map(frame_wh, size).then(EDGE).inverse().apply(points)
