"""Frames -> Multi-HMR's input: fit inside an S x S square keeping the aspect ratio, centre it on
black, RGB in [0, 1], exactly as upstream's `open_image`: Pillow's `ImageOps.contain(img, (S, S))`
(bicubic) then `ImageOps.pad(img, (S, S))` (centred, black). The contained frame is placed at
`image_maps.pad_offset`, which is where `ImageOps.pad` puts it (the tests compare with Pillow).

Geometry comes from `image_maps.multihmr_map`; `padded_intrinsics` and `head_to_original`
convert between the original frame (OpenCV pixel centres) and Multi-HMR's padded square (edge
coordinates, see multihmr.py).
"""
import numpy as np

from .image_maps import EDGE, contain_size, multihmr_map, pad_offset
from .preprocess import check_rgb_frames, frames_to_tensor, map_frames


def pillow_contain(frame, size):
    """One uint8 RGB frame through `ImageOps.contain(img, (size, size))` (bicubic)."""
    from PIL import Image, ImageOps

    return np.asarray(ImageOps.contain(Image.fromarray(frame), (size, size)))


def letterbox_uint8(frames, size=896):
    """Frames of one size, uint8 RGB (B, H, W, 3) or a list of (H, W, 3) -> uint8 (B, S, S, 3)."""
    frames = np.stack(frames) if isinstance(frames, (list, tuple)) else np.asarray(frames)
    frames = check_rgb_frames(frames)
    if frames.ndim != 4:
        raise ValueError(f"expected uint8 frames (B, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    content = contain_size((width, height), size)
    x0, y0 = pad_offset(content, size)
    out = np.zeros((frames.shape[0], size, size, 3), np.uint8)
    inner = out[:, y0:y0 + content[1], x0:x0 + content[0]]
    if content == (width, height):
        inner[:] = frames
    else:
        map_frames(lambda f: pillow_contain(f, size), frames, inner)
    return out


def letterbox_frames(frames, size=896, device=None):
    """Frames of one size, uint8 RGB (B, H, W, 3) or a list of (H, W, 3) -> (B, 3, S, S) float32."""
    return frames_to_tensor(letterbox_uint8(frames, size), device)


def padded_intrinsics(K, frame_wh, size=896):
    """Intrinsics (..., 3, 3) of the original frame (OpenCV) -> Multi-HMR's K for the padded square."""
    return multihmr_map(frame_wh, size).then(EDGE).map_intrinsics(K)


def head_to_original(points, frame_wh, size=896):
    """Multi-HMR pixels (..., 2) in the padded square -> OpenCV pixels of the original frame."""
    return multihmr_map(frame_wh, size).then(EDGE).inverse().apply(points)
