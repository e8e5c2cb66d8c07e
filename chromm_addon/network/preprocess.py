"""Frames -> Pi3X input: resize to about 255k pixels with sides multiples of 14, then [0, 1].

The target size is upstream's (`load_images_as_tensor`, PIXEL_LIMIT=255000): scale the first
frame's size to the pixel budget keeping the aspect ratio, round each side to a multiple of 14,
then shrink the side that most exceeds the aspect ratio until the area fits (e.g. 1920x1080 ->
672x378, square -> 504x504). All frames of a batch get that one size (no crop, no padding).
ImageNet normalisation is done inside the model.

Resampling is upstream's own: Pillow's `Image.resize((w, h), Image.Resampling.LANCZOS)` on the
uint8 RGB frame, then /255, so Pi3X gets the pixels it was trained on. (Pillow's Lanczos widens its
kernel with the shrink factor; OpenCV's INTER_LANCZOS4 does not and differed by up to 142 grey
levels on 1920x1080 -> 672x378.) Pillow releases the GIL while resampling, so the frames of a
window are resized on a small thread pool.
"""
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PIXEL_LIMIT = 255000
PATCH_SIZE = 14


def pi3x_image_size(width, height, pixel_limit=PIXEL_LIMIT, multiple=PATCH_SIZE):
    """(width, height) Pi3X resizes a width x height frame to."""
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    scale = math.sqrt(pixel_limit / (width * height))
    target_w, target_h = width * scale, height * scale
    k, m = round(target_w / multiple), round(target_h / multiple)
    while (k * multiple) * (m * multiple) > pixel_limit:
        if k / m > target_w / target_h:
            k -= 1
        else:
            m -= 1
    return max(1, k) * multiple, max(1, m) * multiple


def map_frames(function, frames, out):
    """out[i] = function(frames[i]) for every frame, on a thread pool (Pillow releases the GIL)."""
    def one(i):
        out[i] = function(frames[i])

    workers = min(len(frames), os.cpu_count() or 1, 8)
    if workers <= 1:
        for i in range(len(frames)):
            one(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(len(frames))))
    return out


def check_rgb_frames(frames):
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim < 3 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB frames (..., H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def pillow_lanczos(frame, size):
    """One uint8 RGB frame resized to size = (w, h) exactly as upstream Pi3X does."""
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(tuple(size), Image.Resampling.LANCZOS))


def resize_frames(frames, size):
    """uint8 RGB frames (..., H, W, 3) -> (..., h, w, 3) with size = (w, h), Pillow's Lanczos."""
    frames = check_rgb_frames(frames)
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    width, height = size
    out = np.empty((flat.shape[0], height, width, 3), dtype=np.uint8)
    map_frames(lambda f: pillow_lanczos(f, (width, height)), flat, out)
    return out.reshape(*lead, height, width, 3)


def frames_to_tensor(frames, device=None):
    """uint8 (..., H, W, 3) -> float32 tensor (..., 3, H, W) in [0, 1] on `device`.

    The uint8 data is what crosses to the device (a quarter of the float bytes).
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return x.movedim(-1, -3).float().div_(255.0)


def preprocess_frames(frames, device=None, pixel_limit=PIXEL_LIMIT):
    """uint8 RGB frames (..., H, W, 3) of one size -> (Pi3X input tensor (..., 3, h, w), (w, h))."""
    frames = np.asarray(frames)
    if frames.ndim < 3:
        raise ValueError(f"expected frames (..., H, W, 3), got shape {frames.shape}")
    size = pi3x_image_size(frames.shape[-2], frames.shape[-3], pixel_limit)
    return frames_to_tensor(resize_frames(frames, size), device), size
