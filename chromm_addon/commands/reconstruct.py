"""`reconstruct CLIP... -o TAKE.npz`: clips -> take (decode, network, fuse, optionally build).

CLIP is a video file or a folder of images. Offsets line unsynchronised clips up: the time in each
clip that matches the common zero, in seconds ('1.5s') or that clip's frames ('12f' or 12).
"""

import argparse


def add_arguments(parser):
    parser.add_argument("clips", nargs="+", metavar="CLIP", help="video files or folders of images, one per view")
    parser.add_argument("-o", "--output", required=True, help="take file to write (.npz)")
    parser.add_argument("--views-out", help="also write the merged network output (views file, .npz)")
    parser.add_argument("--blend", help="also build this .blend from the take (needs the bpy module)")
    parser.add_argument("--weights", help="network weights folder (default: the installed weights)")
    parser.add_argument("--smplx", help="SMPLX_NEUTRAL.npz (default: $CHROMM_SMPLX_MODEL)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--offsets", nargs="+", metavar="OFFSET",
                        help="one per clip: time in the clip of the common zero, '1.5s' or '12f'; "
                             "comma-separated works too (--offsets=-0.5s,0s for negative ones)")
    parser.add_argument("--fps", type=float, help="target frame rate (default: the slowest clip's)")
    parser.add_argument("--start", type=float, help="first time to reconstruct, seconds on the common timeline")
    parser.add_argument("--end", type=float, help="last time to reconstruct, seconds on the common timeline")
    parser.add_argument("--window", type=int,
                        help="timesteps per network window (default: from the device's free memory)")
    parser.add_argument("--image-fps", type=float, help="frame rate assumed for folders of images (default 30)")
    parser.add_argument("--cameras", nargs="+", metavar="FILE",
                        help="known cameras: our JSON (docs/cameras.md), OpenCV calibration files (one per "
                             "clip, in clip order) or EasyMocap intri.yml/extri.yml; intrinsics, lens "
                             "distortion (undistorted before the network) and poses (the take keeps their frame)")
    parser.add_argument("--refloor", action="store_true",
                        help="with known poses, still rescale by the people and align the floor")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    # Developer option: a small random-initialised network, so tests run end to end without weights.
    parser.add_argument("--tiny-network", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    from ..backend.pipeline import ReconstructOptions, reconstruct
    from ..backend.progress import TerminalBar
    from ..errors import ChrommError

    if args.views_out and not args.views_out.endswith(".npz"):
        raise ChrommError(f"{args.views_out}: the views file must end in .npz")
    if not args.output.endswith(".npz"):
        raise ChrommError(f"{args.output}: the take file must end in .npz")
    if args.blend and not args.blend.endswith(".blend"):
        raise ChrommError(f"{args.blend}: the Blender file must end in .blend")
    if args.blend:
        try:
            import importlib.util

            if importlib.util.find_spec("bpy") is None:
                raise ImportError
        except ImportError:
            raise ChrommError(f"{args.blend}: --blend needs the bpy module (run with the project's .venv)") from None
    offsets = [o.strip() for value in args.offsets or () for o in value.split(",") if o.strip()] or None
    options = ReconstructOptions(
        clips=args.clips, offsets=offsets, fps=args.fps, start=args.start, end=args.end,
        window=args.window, image_fps=args.image_fps, device=args.device, weights=args.weights,
        smplx=args.smplx, tiny_network=args.tiny_network, seed=args.seed, cameras=args.cameras,
        refloor=args.refloor)
    bar = None if args.quiet else TerminalBar()
    try:
        stats = reconstruct(options, args.output, views_out=args.views_out, blend_out=args.blend,
                            progress=bar)
    finally:
        if bar is not None:
            bar.finish()
    for note in stats.notes:
        print(f"note: {note}")
    written = ", ".join(p for p in (args.output, args.views_out, args.blend) if p)
    print(f"reconstructed {stats.timesteps} timesteps of {len(args.clips)} views in {stats.windows} "
          f"window(s) of {stats.window_size}: {written}")
    return 0
