"""`build TAKE.npz -o OUT.blend [--smplx FILE] [--pose-correctives]`: a take file to a .blend (needs bpy)."""

from .blender_child import add_parent_argument, start


def add_arguments(parser):
    parser.add_argument("take", help="take file (.npz, chromm.take v1)")
    parser.add_argument("-o", "--output", required=True, help="the .blend to write")
    parser.add_argument("--smplx", help="SMPLX_NEUTRAL.npz (default: $CHROMM_SMPLX_MODEL)")
    parser.add_argument("--pose-correctives", action="store_true",
                        help="add SMPL-X pose-corrective shape keys, keyed per frame (exact "
                             "smplx surface; slower playback)")
    add_parent_argument(parser)  # set by reconstruct / batch, which hold this process's stdin


def run(args):
    start("build", args)
    from ..blender.build import build_take_file

    build_take_file(args.take, args.output, smplx_path=args.smplx,
                    pose_correctives=args.pose_correctives)
    return 0
