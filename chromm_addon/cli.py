"""`python -m chromm_addon COMMAND ...`: the command line of contract 4.

Each command lives in `commands/<name>.py` with `add_arguments(parser)` and `run(args) -> int`;
those modules import nothing heavy at module level (torch, bpy, cv2 are imported inside `run`).
User errors raise ChrommError and end here as one line `error: ...` with exit status 2.
"""

import argparse
import importlib
import sys

from . import __version__
from .errors import ChrommError
from .lifecycle import Terminated, terminate_as_interrupt

# (command, module under commands/, one-line help)
COMMANDS = (
    ("reconstruct", "reconstruct", "clips -> take (decode, network, fuse, optionally build)"),
    ("batch", "batch", "many takes from a manifest, here or on a Ray cluster"),
    ("fuse", "fuse", "views file -> take file (test-time modules only)"),
    ("sync", "sync", "each clip's time offset from its audio or the people's motion"),
    ("build", "build", "take file -> .blend (needs the bpy module)"),
    ("render", "render", "take file -> video of its people over a view's source clip (needs bpy)"),
    ("serve", "serve", "run the HTTP inference service"),
    ("weights", "weights", "check or download the network weights"),
    ("selftest", "selftest", "is the backend ready: torch, GPU, weights, SMPL-X, a dry run"),
    ("cameras", "cameras", "read calibration files, write them as one camera document (.json)"),
    ("model", "model", "describe the network (parameter counts)"),
    ("demo", "demo", "the end-to-end demo of `make demo`"),
)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m chromm_addon",
                                     description="CHROMM multi-view human and scene reconstruction")
    parser.add_argument("--version", action="version", version=f"chromm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module, help_text in COMMANDS:
        mod = importlib.import_module(f".commands.{module}", __package__)
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    terminate_as_interrupt()  # SIGTERM cleans up like Ctrl-C (`serve` installs its own handler)
    try:
        return int(args._run(args) or 0)
    except ChrommError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("error: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
