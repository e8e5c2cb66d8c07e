"""Input limits shared by the command line and the service (documented in docs/backend.md)."""

MAX_CLIPS = 16             # views per take
MAX_SIDE = 8192            # pixels, width or height of one frame
MAX_FPS = 240.0            # target and assumed frame rates
MAX_TIMESTEPS = 200_000    # timesteps per take (about 1 h 50 min at 30 fps)
MAX_OFFSET_S = 24 * 3600.0
MIN_WINDOW = 2             # timesteps in a network window
MAX_UPLOAD_BYTES = 4 << 30  # per uploaded clip file
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def check_frame_size(path, width, height):
    """ChrommError naming `path` when a frame's width or height is outside 2..MAX_SIDE pixels."""
    from ..errors import ChrommError

    if width < 2 or height < 2 or width > MAX_SIDE or height > MAX_SIDE:
        raise ChrommError(f"{path}: frame size {width}x{height} is outside 2..{MAX_SIDE} pixels per side")


def check_frame_header(source, path=None):
    """Refuse a video whose frames are too large from its container header alone, before any frame
    is decoded (a 9000x9000 frame costs hundreds of MB once decoded). Reads the first video
    stream's codec parameters with PyAV, whatever decoder reads the frames later. A file PyAV
    cannot open, or one whose header gives no size, is left to the decoder to judge."""
    try:
        import av
    except ImportError:  # PyAV is pinned in requirements.txt; without it the decoder's check remains
        return
    try:
        container = av.open(str(source), mode="r")
    except (av.FFmpegError, OSError, ValueError):
        return
    try:
        streams = container.streams.video
        if not streams:
            return
        codec = streams[0].codec_context
        width, height = int(codec.width or 0), int(codec.height or 0)
    finally:
        container.close()
    if width and height:
        check_frame_size(path or source, width, height)
