"""Clips (video files or folders of images) opened with OpenCV and decoded sequentially.

Every decoded frame carries its own timestamp (`CAP_PROP_POS_MSEC` after `read()`), because
frame-index seeking and `frame_count / fps` are wrong on variable-frame-rate phone video. Nothing
seeks: a clip is read front to back once, and `timeline.py` picks frames by time.
"""

import dataclasses
import os
import re
import stat
import threading
import weakref

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
    """A video file. `frames()` decodes it front to back, one `Frame` at a time."""

    kind = "video"

    def __init__(self, path, source=None):
        self.path = str(path)
        self.source = source or self.path  # what the decoder opens (a pinned descriptor's path)
        self.name = _view_name(self.path)
        cv2 = _cv2()
        cap = cv2.VideoCapture(self.source)
        try:
            if not cap.isOpened():
                raise ChrommError(f"{self.path}: not a video OpenCV can read (unknown or damaged format)")
            ok, image = cap.read()
            if not ok or image is None:
                raise ChrommError(f"{self.path}: the video has no frames")
            self.first_time = max(0.0, cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
            fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        self.height, self.width = image.shape[:2]
        check_frame_size(self.path, self.width, self.height)
        # Containers without a usable rate: assume 30 fps; the frames' own timestamps still rule.
        self.fps = float(fps) if fps and 0 < fps <= 1000 else 30.0
        self.frame_count = max(1, count)
        # An estimate from the header; sampling stops where the frames really end.
        self.last_time = self.first_time + (self.frame_count - 1) / self.fps

    def frames(self):
        cv2 = _cv2()
        cap = cv2.VideoCapture(self.source)
        try:
            previous = None
            step = 1.0 / self.fps
            while True:
                ok, image = cap.read()
                if not ok or image is None:
                    return
                time = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                # Some backends report no timestamps (0 or repeated); fall back to the nominal rate.
                if previous is not None and not time > previous:
                    time = previous + step
                previous = time
                if image.shape[:2] != (self.height, self.width):
                    raise ChrommError(f"{self.path}: the frame size changes inside the clip "
                                      f"({self.width}x{self.height} -> {image.shape[1]}x{image.shape[0]})")
                yield Frame(time, LIVE_FRAMES.track(_to_rgb(image)))
        finally:
            cap.release()


class ImageFolderClip:
    """A folder of images in name order, at an assumed frame rate, or at the times listed in
    `timestamps.txt` (one time in seconds per image, in the same order) when the folder has one."""

    kind = "images"

    def __init__(self, path, fps=None, source=None, no_links=False):
        self.path = str(path)
        self.source = source or self.path  # the folder read (a pinned descriptor's path)
        self.no_links = no_links  # members that are links are refused, members opened O_NOFOLLOW
        self.name = _view_name(self.path)
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


def _view_name(path):
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
