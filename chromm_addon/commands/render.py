"""`render TAKE.npz --view N -o OUT.mp4 [--frames A:B] [--still OUT.png] [--smplx FILE]`: the
take's people over one view's source clip (needs bpy and the clip named in the take)."""

import os

from .blender_child import add_parent_argument, start


def add_arguments(parser):
    parser.add_argument("take", help="take file (.npz); its meta 'sources' names each view's clip")
    parser.add_argument("--view", type=int, default=0, help="view index, 0-based (default 0)")
    parser.add_argument("-o", "--output", required=True, help="the video to write (.mp4)")
    parser.add_argument("--frames", metavar="A:B",
                        help="timesteps A to B-1 (0-based; output frame i shows timestep A+i); default all")
    parser.add_argument("--still", help="PNG still of the middle frame (default: OUTPUT with .png)")
    parser.add_argument("--smplx", help="SMPLX_NEUTRAL.npz (default: $CHROMM_SMPLX_MODEL; "
                        "without one, procedural mannequins)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="output size relative to the view's image size, 0.01..1 (default 1)")
    parser.add_argument("--engine", choices=("auto", "workbench", "cycles"), default="auto",
                        help="auto: Workbench where OpenGL works, else Cycles at low samples")
    add_parent_argument(parser)  # set by reconstruct / batch, which hold this process's stdin


def run(args):
    start("render", args)
    from ..backend.progress import TerminalBar
    from ..blender.overlay import render_take_file

    still = args.still or os.path.splitext(args.output)[0] + ".png"
    bar = TerminalBar(stages={"render": 1.0})
    notes = []
    try:
        count = render_take_file(args.take, args.view, args.output, still, args.frames, args.smplx,
                                 args.engine.upper(), args.scale,
                                 progress=lambda done, total: bar("render", done, total), notes=notes)
    finally:
        bar.finish()
    for note in notes:
        print(f"note: {note}")
    print(f"overlay: {count} frames -> {args.output}; still -> {still}")
    return 0
