"""Small synthetic clips for the backend tests, written with OpenCV.

Every frame carries its own index as 8 binary columns (white = 1, most significant bit left),
so a test can read back which source frame the sampler picked.
"""

import os

import cv2
import numpy as np

BITS = 8


def index_frame(index, width=64, height=48, person=True):
    """An RGB frame showing `index` in binary, with a moving blob so the network sees something."""
    image = np.zeros((height, width, 3), np.uint8)
    column = width // BITS
    for bit in range(BITS):
        if (index >> (BITS - 1 - bit)) & 1:
            image[: height // 2, bit * column:(bit + 1) * column] = 255
    if person:
        x = int(width * (0.2 + 0.6 * ((index % 40) / 40.0)))
        cv2.circle(image, (x, height * 3 // 4), max(2, height // 10), (200, 80, 40), -1)
    return image


def read_index(image):
    """The index written by `index_frame` (RGB or BGR)."""
    height, width = image.shape[:2]
    column = width // BITS
    gray = image[: height // 2].mean(axis=2)
    value = 0
    for bit in range(BITS):
        block = gray[2:-2, bit * column + 2:(bit + 1) * column - 2]
        value = (value << 1) | int(block.mean() > 127)
    return value


def write_clip(path, num_frames, fps, width=64, height=48, start_index=0):
    """An MJPG .avi (or mp4v .mp4) whose frame i shows index start_index + i."""
    path = str(path)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.endswith(".mp4") else "MJPG"))
    writer = cv2.VideoWriter(path, fourcc, float(fps), (width, height))
    assert writer.isOpened(), path
    for i in range(num_frames):
        writer.write(cv2.cvtColor(index_frame(start_index + i, width, height), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_image_folder(folder, times=None, num_frames=None, width=64, height=48):
    """A folder of PNGs; with `times`, a timestamps.txt gives each image's time (VFR-like)."""
    os.makedirs(folder, exist_ok=True)
    n = len(times) if times is not None else num_frames
    for i in range(n):
        cv2.imwrite(os.path.join(folder, f"frame_{i:05d}.png"),
                    cv2.cvtColor(index_frame(i, width, height), cv2.COLOR_RGB2BGR))
    if times is not None:
        with open(os.path.join(folder, "timestamps.txt"), "w") as fh:
            fh.write("".join(f"{t:.6f}\n" for t in times))
    return str(folder)
