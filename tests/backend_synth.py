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


def quadrant_frame(width=64, height=48, index=0):
    """Four coloured quadrants (red, green / blue, white) so any rotation or mirror shows."""
    image = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    image[:h, :w] = (220, 30, 30)
    image[:h, w:] = (30, 220, 30)
    image[h:, :w] = (30, 30, 220)
    image[h:, w:] = (230, 230, 230)
    image[:4, :min(width, 4 + index)] = 0  # a marker growing with the frame index
    return image


def write_av_clip(path, frames, fps=30, times=None, codec="libx264", pix_fmt="yuv420p",
                  rotation=None, hflip=False, vflip=False, matrix=None, sar=None, color_trc=None,
                  audio=None, audio_rate=48000):
    """A clip written with PyAV (FFmpeg): `frames` RGB uint8 images (or None for audio only);
    `times` per-frame presentation times in seconds (variable frame rate), `rotation`/`hflip`/
    `vflip` or a raw display `matrix` as side data, `sar` a pixel aspect ratio (num, den),
    `color_trc` a transfer characteristic tag (16 = PQ), `audio` mono float samples in [-1, 1]."""
    import fractions

    import av

    out = av.open(str(path), "w")
    stream = None
    if frames is not None:
        height, width = frames[0].shape[:2]
        options = {"x265-params": "log-level=error"} if codec == "libx265" else {"crf": "12"}
        stream = out.add_stream(codec, rate=fps, options=options if codec.startswith("libx26") else {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if times is not None:
            stream.time_base = fractions.Fraction(1, 10000)
            stream.codec_context.time_base = fractions.Fraction(1, 10000)
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = fractions.Fraction(*sar)
        if color_trc is not None:
            stream.codec_context.color_trc = color_trc
        if matrix is not None:
            stream.set_display_matrix(list(matrix))
        elif rotation is not None or hflip or vflip:
            stream.set_display_rotation(rotation or 0, hflip=hflip, vflip=vflip)
    astream = None
    if audio is not None:
        astream = out.add_stream("aac", rate=int(audio_rate), layout="mono")
    if stream is not None:
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if pix_fmt != "yuv420p":
                frame = frame.reformat(format=pix_fmt)
            if color_trc is not None:
                frame.color_trc = color_trc
            if times is not None:
                frame.pts = int(round(times[i] * 10000))
                frame.time_base = fractions.Fraction(1, 10000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    if astream is not None:
        samples = np.asarray(audio, np.float32)
        block = 1024
        for i in range(0, len(samples), block):
            chunk = samples[i:i + block]
            frame = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
            frame.sample_rate = int(audio_rate)
            frame.pts = i
            for packet in astream.encode(frame):
                out.mux(packet)
        for packet in astream.encode():
            out.mux(packet)
    out.close()
    return str(path)
