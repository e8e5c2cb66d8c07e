"""`build TAKE.npz -o OUT.blend [--smplx FILE] [--pose-correctives]`: a take file to a .blend (needs bpy)."""

import argparse

from ..errors import ChrommError


def add_arguments(parser):
    parser.add_argument("take", help="take file (.npz, chromm.take v1)")
    parser.add_argument("-o", "--output", required=True, help="the .blend to write")
    parser.add_argument("--smplx", help="SMPLX_NEUTRAL.npz (default: $CHROMM_SMPLX_MODEL)")
    parser.add_argument("--pose-correctives", action="store_true",
                        help="add SMPL-X pose-corrective shape keys, keyed per frame (exact "
                             "smplx surface; slower playback)")
    # Set by `reconstruct --blend`, which holds this process's stdin: stop when it dies.
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)


def run(args):
    try:
        import bpy  # noqa: F401
    except ImportError:
        raise ChrommError("the 'build' command needs the bpy module (run it with the project's "
                          ".venv, or inside Blender)") from None
    from ..blender.build import build_take_file

    if args.exit_on_stdin_eof:
        from ..lifecycle import interrupt_main, watch_stdin_eof

        watch_stdin_eof(interrupt_main)

    build_take_file(args.take, args.output, smplx_path=args.smplx,
                    pose_correctives=args.pose_correctives)
    return 0
