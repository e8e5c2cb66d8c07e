"""Clips (video files or folders of images), decoded sequentially.

Video files are decoded with PyAV (FFmpeg): it gives every frame its presentation timestamp and
the side data real clips carry (the display matrix of phone clips), which OpenCV 4.11+ no longer
applies by default. Every decoded frame keeps its own timestamp, because frame-index seeking and
`frame_count / fps` are wrong on variable-frame-rate phone video. Nothing seeks: a clip is read
front to back once, and `timeline.py` picks frames by time. Folders of images are read with
OpenCV (`cv2.imread`, which handles every still format listed in limits.py).
"""

import dataclasses
import os
import re
import stat
import threading
import weakref

import numpy as np

from ..errors import ChrommError
from .limits import IMAGE_EXTENSIONS, MAX_FPS, MAX_OFFSET_S, check_frame_header, check_frame_size

TIMESTAMPS_FILE = "timestamps.txt"
_OFFSET = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([sf]?)\s*$")


def _cv2():
    import cv2

    return cv2


@dataclasses.dataclass(frozen=True)
class Offset:
    """A clip's start offset: the time in that clip that lines up with the common zero."""

    value: float
    unit: str  # "s" or "f"

    def seconds(self, fps):
        return self.value if self.unit == "s" else self.value / fps

    def __str__(self):
        return f"{self.value:g}{self.unit}"


def parse_offset(text):
    """'1.5s' -> 1.5 seconds; '12f', '12' or 12 -> 12 frames of that clip."""
    if isinstance(text, Offset):
        return text
    if isinstance(text, bool):
        raise ChrommError(f"offset {text!r}: expected seconds ('1.5s') or frames ('12f' or 12)")
    if isinstance(text, (int, float)):
        text = f"{text}f" if float(text).is_integer() else f"{text}s"
    m = _OFFSET.match(str(text))
    if not m:
        raise ChrommError(f"offset {text!r}: expected seconds ('1.5s') or frames ('12f' or 12)")
    value, unit = float(m.group(1)), m.group(2) or "f"
    if unit == "f" and not value.is_integer():
        raise ChrommError(f"offset {text!r}: a frame offset must be a whole number (or use seconds, '1.5s')")
    return Offset(value, unit)


class LiveFrames:
    """Counts decoded frame images still alive anywhere (for the bounded-memory check)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.current = self.peak = 0

    def track(self, image):
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        weakref.finalize(image, self._release)
        return image

    def _release(self):
        with self._lock:
            self.current -= 1

    def reset_peak(self):
        with self._lock:
            self.peak = self.current


LIVE_FRAMES = LiveFrames()


@dataclasses.dataclass
class Frame:
    time: float       # seconds in the clip's own time
    image: object     # uint8 (H, W, 3) RGB, or None until `load()`
    loader: object = None

    def load(self):
        if self.image is None:
            self.image = self.loader()
        return self.image


class VideoClip:
    """A video file, decoded with PyAV. `frames()` decodes it front to back, one `Frame` at a time.

    Frames come out as the clip is meant to be seen: the display matrix (phone rotation, mirroring)
    applied, non-square pixels stretched to square ones, 10-bit and HDR sources converted to 8-bit
    RGB. Each frame keeps its own presentation timestamp (variable frame rate is kept as recorded).
    """

    kind = "video"

    def __init__(self, path, source=None):
        self.path = str(path)
        self.source = source or self.path  # what the decoder opens (a pinned descriptor's path)
        self.name = view_name(self.path)
        self.notes = []  # one line per thing the user should know (e.g. an unreadable rotation tag)
        container = _open_container(self.source, self.path)
        try:
            stream = _video_stream(container, self.path)
            ctx = stream.codec_context
            if ctx.width and ctx.height:  # the container header's size, checked before decoding
                check_frame_size(self.path, ctx.width, ctx.height)
            first = None
            try:
                for first in container.decode(stream):
                    break
            except av_errors() as exc:
                raise ChrommError(f"{self.path}: the video cannot be decoded ({_av_message(exc)})") from None
            if first is None:
                raise ChrommError(f"{self.path}: the video has no frames")
            self.coded_size = (first.width, first.height)
            self.orientation = _orientation(first, self.path, self.notes)
            self.display_size = _display_size(first.width, first.height, _sample_aspect(stream), self.notes,
                                              self.path)
            self.hdr = _hdr_transfer(first)
            self.first_time = max(0.0, _frame_time(first) or 0.0)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            count = stream.frames
            if not count and stream.duration and stream.time_base and fps:
                count = int(round(float(stream.duration * stream.time_base) * fps))
            if not count and container.duration and fps:  # e.g. Matroska: the segment's duration
                count = int(round(container.duration / 1e6 * fps))
        finally:
            container.close()
        width, height = self.display_size
        if self.orientation.swaps_axes:
            width, height = height, width
        self.width, self.height = width, height
        check_frame_size(self.path, self.width, self.height)
        # Containers without a usable rate: assume 30 fps; the frames' own timestamps still rule.
        self.fps = fps if 0 < fps <= 1000 else 30.0
        self.frame_count = max(1, int(count or 0))
        # An estimate from the header; sampling stops where the frames really end.
        self.last_time = self.first_time + (self.frame_count - 1) / self.fps

    def frames(self):
        container = _open_container(self.source, self.path)
        try:
            stream = _video_stream(container, self.path)
            stream.thread_type = "AUTO"  # frame- and slice-threaded decoding
            previous = None
            step = 1.0 / self.fps
            try:
                for frame in container.decode(stream):
                    time = _frame_time(frame)
                    # Frames without timestamps (or repeated ones): fall back to the nominal rate.
                    if time is None or (previous is not None and not time > previous):
                        time = (previous + step) if previous is not None else self.first_time
                    previous = time
                    if (frame.width, frame.height) != self.coded_size:
                        raise ChrommError(f"{self.path}: the frame size changes inside the clip "
                                          f"({self.coded_size[0]}x{self.coded_size[1]} -> "
                                          f"{frame.width}x{frame.height})")
                    yield Frame(time, LIVE_FRAMES.track(self.to_rgb(frame)))
            except av_errors() as exc:
                raise ChrommError(f"{self.path}: decoding failed at {previous or 0:.3f} s "
                                  f"({_av_message(exc)})") from None
        finally:
            container.close()

    def to_rgb(self, frame):
        """A decoded PyAV frame -> uint8 RGB (H, W, 3) as displayed."""
        width, height = self.display_size
        size = {} if (width, height) == self.coded_size else {"width": width, "height": height,
                                                              "interpolation": "BICUBIC"}
        if self.hdr is None and frame.format.components[0].bits <= 8:
            image = frame.to_ndarray(format="rgb24", **size)
        else:  # > 8 bits: via 16-bit RGB (swscale's direct 10-bit -> rgb24 path is off by ~2 levels)
            image = _to_8bit(frame.to_ndarray(format="rgb48le", **size), self.hdr)
        return self.orientation.apply(image)


class ImageFolderClip:
    """A folder of images in name order, at an assumed frame rate, or at the times listed in
    `timestamps.txt` (one time in seconds per image, in the same order) when the folder has one."""

    kind = "images"

    def __init__(self, path, fps=None, source=None, no_links=False):
        self.path = str(path)
        self.source = source or self.path  # the folder read (a pinned descriptor's path)
        self.no_links = no_links  # members that are links are refused, members opened O_NOFOLLOW
        self.name = view_name(self.path)
        entries = sorted((e for e in os.scandir(self.source) if e.name.lower().endswith(IMAGE_EXTENSIONS)),
                         key=lambda e: e.name)
        if not entries:
            raise ChrommError(f"{self.path}: the folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
        if no_links:
            for entry in entries:
                if entry.is_symlink():
                    raise ChrommError(f"{os.path.join(self.path, entry.name)}: a link; this service "
                                      "reads no links inside image folders")
        self.files = [os.path.join(self.source, e.name) for e in entries]
        stamps = os.path.join(self.source, TIMESTAMPS_FILE)
        if os.path.lexists(stamps):
            self.times = _read_timestamps(stamps, len(self.files), self._shown(stamps), no_links)
            span = self.times[-1] - self.times[0]
            self.fps = (len(self.times) - 1) / span if len(self.times) > 1 else float(fps or 30.0)
        else:
            if fps is None:
                fps = 30.0
            self.fps = check_fps(fps, f"{self.path}: assumed frame rate")
            self.times = [i / self.fps for i in range(len(self.files))]
        first = self._imread(self.files[0])
        self.height, self.width = first.shape[:2]
        check_frame_size(self._shown(self.files[0]), self.width, self.height)
        self.frame_count = len(self.files)
        self.first_time, self.last_time = self.times[0], self.times[-1]

    def frames(self):
        for time, file in zip(self.times, self.files):
            yield Frame(time, None, loader=lambda f=file: self._load(f))

    def _shown(self, file):
        return os.path.join(self.path, os.path.basename(file))

    def _imread(self, file):
        if not self.no_links:
            return _imread(file)
        return _imread(file, data=_read_no_link(file, self._shown(file)), shown=self._shown(file))

    def _load(self, file):
        image = self._imread(file)
        if image.shape[:2] != (self.height, self.width):
            raise ChrommError(f"{self._shown(file)}: image size {image.shape[1]}x{image.shape[0]} differs from "
                              f"the folder's first image ({self.width}x{self.height})")
        return LIVE_FRAMES.track(image)


def open_clip(path, image_fps=None):
    """A VideoClip or ImageFolderClip for `path`, with a clear error when it cannot be one.

    `path` may be a `security.PinnedPath` (the service's clips): then it is read through its open
    descriptor, and an image folder's members are opened without following links."""
    pinned = getattr(path, "pinned", False)
    source = path.open_path if pinned else None
    path = os.path.expanduser(str(path))
    source = source or path
    if not os.path.exists(source):
        raise ChrommError(f"{path}: no such file or folder")
    if os.path.isdir(source):
        return ImageFolderClip(path, fps=image_fps, source=source, no_links=pinned)
    if not os.access(source, os.R_OK):
        raise ChrommError(f"{path}: the file is not readable (permissions)")
    if os.path.getsize(source) == 0:
        raise ChrommError(f"{path}: the file is empty")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        raise ChrommError(f"{path}: a single image is not a clip (give a folder of images or a video)")
    check_frame_header(source, path)
    return VideoClip(path, source=source)


def check_fps(fps, what):
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise ChrommError(f"{what} {fps!r} is not a number") from None
    if not (0 < fps <= MAX_FPS):
        raise ChrommError(f"{what} {fps:g} is outside (0, {MAX_FPS:g}] frames per second")
    return fps


def check_offset_seconds(seconds, clip):
    if abs(seconds) > MAX_OFFSET_S:
        raise ChrommError(f"{clip.path}: offset {seconds:g} s is larger than {MAX_OFFSET_S:g} s")
    return seconds


def av_errors():
    import av

    return (av.FFmpegError, UnicodeDecodeError)


def _av_message(exc):
    return str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__


def _open_container(source, path):
    """PyAV container of `source` (what is read: a pinned descriptor's path), errors naming `path`."""
    import av

    try:
        return av.open(source, "r")
    except av_errors() as exc:
        raise ChrommError(f"{path}: not a video that can be read ({_av_message(exc)})") from None


def _video_stream(container, path):
    if not container.streams.video:
        container.close()
        raise ChrommError(f"{path}: the file has no video stream")
    return container.streams.video[0]


def _frame_time(frame):
    if frame.pts is None or frame.time_base is None:
        return None
    return float(frame.pts * frame.time_base)


@dataclasses.dataclass(frozen=True)
class Orientation:
    """How to turn decoded pixels upright: transpose first, then flip rows and/or columns.

    From the display matrix (FFmpeg's AV_FRAME_DATA_DISPLAYMATRIX): a decoded pixel (x, y) is
    shown at (a x + c y, b x + d y) with [[a, b], [c, d]] its upper-left block (16.16 fixed point).
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @property
    def swaps_axes(self):
        return self.transpose

    @property
    def identity(self):
        return not (self.transpose or self.flip_rows or self.flip_cols)

    def apply(self, image):
        if self.identity:
            return image
        if self.transpose:
            image = image.transpose(1, 0, 2)
        if self.flip_rows:
            image = image[::-1]
        if self.flip_cols:
            image = image[:, ::-1]
        return np.ascontiguousarray(image)


def orientation_from_matrix(matrix):
    """The Orientation of a 9-value display matrix, or None when it is not a multiple of 90 degrees
    (possibly mirrored): such a matrix cannot come from a camera and is reported as unreadable."""
    a, b, _, c, d = (float(v) / 65536.0 for v in matrix[:5])
    if abs(a) < 1e-3 and abs(d) < 1e-3 and abs(b) > 1e-3 and abs(c) > 1e-3:
        # x' = c y, y' = b x: transposed, then mirrored where the sign is negative
        if abs(abs(b) - abs(c)) > 1e-2 * max(abs(b), abs(c)):
            return None
        return Orientation(transpose=True, flip_rows=b < 0, flip_cols=c < 0)
    if abs(b) < 1e-3 and abs(c) < 1e-3 and abs(a) > 1e-3 and abs(d) > 1e-3:
        if abs(abs(a) - abs(d)) > 1e-2 * max(abs(a), abs(d)):
            return None
        return Orientation(flip_rows=d < 0, flip_cols=a < 0)
    return None


def _orientation(frame, path, notes):
    import struct

    for data in frame.side_data:
        if getattr(data.type, "name", "") != "DISPLAYMATRIX":
            continue
        raw = bytes(data)
        matrix = struct.unpack("<9i", raw) if len(raw) == 36 else None
        orientation = orientation_from_matrix(matrix) if matrix else None
        if orientation is None:
            notes.append(f"{path}: the rotation tag (display matrix {list(matrix) if matrix else raw.hex()}) "
                         "is not a rotation by a multiple of 90 degrees; the frames are used as decoded")
            return Orientation()
        return orientation
    return Orientation()


def _sample_aspect(stream):
    for sar in (stream.codec_context.sample_aspect_ratio, stream.sample_aspect_ratio):
        if sar is not None and sar.numerator > 0 and sar.denominator > 0:
            return sar
    return None


def _display_size(width, height, sar, notes, path):
    """Non-square pixels (sample aspect ratio != 1) stretched to square ones, never shrinking."""
    if sar is None or sar == 1:
        return width, height
    ratio = float(sar)
    if not (0.1 <= ratio <= 10):
        notes.append(f"{path}: pixel aspect ratio {sar} ignored (implausible)")
        return width, height
    if ratio > 1:
        return int(round(width * ratio / 2)) * 2, height
    return width, int(round(height / ratio / 2)) * 2


_HDR_TRC = {16: "pq", 18: "hlg"}  # AVCOL_TRC_SMPTE2084, AVCOL_TRC_ARIB_STD_B67


def _hdr_transfer(frame):
    return _HDR_TRC.get(int(frame.color_trc or 0))


_TONE_LUT = {}


def _to_8bit(rgb16, transfer):
    """16-bit RGB -> 8-bit through one lookup table per transfer. SDR (transfer None): rounded.
    HDR (PQ or HLG): the transfer's inverse to linear light, diffuse white at 203 cd/m^2 (ITU-R BT.2408) mapped
    to 1, highlights rolled off with Reinhard's x / (1 + x) above 0.75, then the BT.709 gamma.
    The wide-gamut primaries are kept (no gamut mapping): colours are a little less saturated
    than on an HDR display, which the network does not mind."""
    lut = _TONE_LUT.get(transfer)
    if lut is None:
        e = np.arange(65536, dtype=np.float64) / 65535.0
        if transfer is None:
            lut = _TONE_LUT[None] = np.round(e * 255).astype(np.uint8)
            return lut[rgb16]
        if transfer == "pq":
            m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
            p = e ** (1 / m2)
            nits = 10000.0 * (np.maximum(p - c1, 0) / (c2 - c3 * p)) ** (1 / m1)
            linear = nits / 203.0
        else:  # HLG inverse OETF, nominal peak 1000 cd/m^2 with diffuse white at 75 % signal
            a, b, c = 0.17883277, 0.28466892, 0.55991073
            scene = np.where(e <= 0.5, e * e / 3.0, (np.exp((e - c) / a) + b) / 12.0)
            linear = scene / ((np.exp((0.75 - c) / a) + b) / 12.0)
        knee = 0.75
        over = np.maximum(linear - knee, 0)
        mapped = np.where(linear <= knee, linear, knee + (1 - knee) * over / ((1 - knee) + over))
        mapped = np.clip(mapped, 0, 1)
        v = np.where(mapped < 0.018, 4.5 * mapped, 1.099 * mapped ** 0.45 - 0.099)
        lut = _TONE_LUT[transfer] = np.round(np.clip(v, 0, 1) * 255).astype(np.uint8)
    return lut[rgb16]


def view_name(path):
    base = os.path.basename(os.path.normpath(path))
    return os.path.splitext(base)[0] or base


def _to_rgb(image):
    cv2 = _cv2()
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _imread(file, data=None, shown=None):
    cv2 = _cv2()
    if data is None:
        image = cv2.imread(file, cv2.IMREAD_COLOR)
    else:
        import numpy as np

        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise ChrommError(f"{shown or file}: not an image OpenCV can read")
    return _to_rgb(image)


def _read_no_link(file, shown):
    """The bytes of a folder member, opened with O_NOFOLLOW (a link in its place is refused)."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ChrommError(f"{shown}: cannot be read without following a link ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ChrommError(f"{shown}: not a file")
        return fh.read()


def _read_timestamps(path, count, shown=None, no_links=False):
    shown = shown or path
    try:
        if no_links:
            text = _read_no_link(path, shown).decode("utf-8")
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        times = [float(line) for line in text.splitlines() if line.strip()]
    except (ValueError, UnicodeDecodeError):
        raise ChrommError(f"{shown}: every line must be a time in seconds") from None
    if len(times) != count:
        raise ChrommError(f"{shown}: {len(times)} times for {count} images")
    if any(b <= a for a, b in zip(times, times[1:])):
        raise ChrommError(f"{shown}: the times must increase strictly")
    return times
