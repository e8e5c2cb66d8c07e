"""Input limits shared by the command line and the service (documented in docs/backend.md)."""

MAX_CLIPS = 16             # views per take
MAX_SIDE = 8192            # pixels, width or height of one frame
MAX_FPS = 240.0            # target and assumed frame rates
MAX_TIMESTEPS = 200_000    # timesteps per take (about 1 h 50 min at 30 fps)
MAX_OFFSET_S = 24 * 3600.0
MIN_WINDOW = 2             # timesteps in a network window
MAX_UPLOAD_BYTES = 4 << 30  # per uploaded clip file
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
