"""`reconstruct CLIP... -o TAKE.npz`: clips -> take (decode, network, fuse, optionally build).

CLIP is a video file or a folder of images. Offsets line unsynchronised clips up: the time in each
clip that matches the common zero, in seconds ('1.5s') or that clip's frames ('12f' or 12).
"""

import argparse


def add_arguments(parser):
    from ..options import ReconstructOptions, add_arguments as add_option_arguments

    parser.add_argument("clips", nargs="+", metavar="CLIP", help="video files or folders of images, one per view")
    parser.add_argument("-o", "--output", required=True, help="take file to write (.npz)")
    parser.add_argument("--views-out", help="also write the merged network output (views file, .npz)")
    parser.add_argument("--blend", help="also build this .blend from the take (needs the bpy module)")
    parser.add_argument("--offsets", nargs="+", metavar="OFFSET",
                        help="one per clip: time in the clip of the common zero, '1.5s' or '12f'; "
                             "comma-separated works too (--offsets=-0.5s,0s for negative ones)")
    add_option_arguments(parser, ReconstructOptions)
    # Shorthand of --network tiny (tests, CI).
    parser.add_argument("--tiny-network", dest="network", action="store_const", const="tiny",
                        help=argparse.SUPPRESS)
    parser.add_argument("--cameras", nargs="+", metavar="FILE",
                        help="known cameras: our JSON (docs/cameras.md), OpenCV calibration files (one per "
                             "clip, in clip order) or EasyMocap intri.yml/extri.yml: intrinsics, lens "
                             "distortion (undistorted before the network) and poses (the take keeps their frame)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    from ..backend.pipeline import reconstruct
    from ..backend.progress import TerminalBar
    from ..errors import ChrommError
    from ..options import ReconstructOptions, from_args

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
    given = dict(clips=args.clips, offsets=offsets)
    if args.cameras:
        from ..io.cameras import read_camera_files

        given["cameras"] = read_camera_files(args.cameras)
    options = from_args(ReconstructOptions, args, **given)
    bar = None if args.quiet else TerminalBar()
    try:
        stats = reconstruct(options, args.output, views_out=args.views_out, blend_out=args.blend,
                            progress=bar)
    finally:
        if bar is not None:
            bar.finish()
    for note in stats.notes:
        print(f"note: {note}")
    if stats.sync.get("offsets_s") is not None:
        print(f"sync ({stats.sync['method']}): offsets " +
              ", ".join(f"{o:.4f} s" for o in stats.sync["offsets_s"]))
    written = ", ".join(p for p in (args.output, args.views_out, args.blend) if p)
    print(f"reconstructed {stats.timesteps} timesteps of {len(args.clips)} views in {stats.windows} "
          f"window(s) of {stats.window_size}: {written}")
    return 0
