"""What the commands that need bpy (`build`, `render`) share: the bpy check and the
`--exit-on-stdin-eof` flag, set by a backend parent that holds this process's stdin."""

import argparse

from ..errors import ChrommError


def add_parent_argument(parser):
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)


def start(command, args):
    """Fail with one line without bpy; with --exit-on-stdin-eof, stop when the parent dies."""
    try:
        import bpy  # noqa: F401
    except ImportError:
        raise ChrommError(f"the '{command}' command needs the bpy module (run it with the project's "
                          ".venv, or inside Blender)") from None
    if args.exit_on_stdin_eof:
        from ..lifecycle import interrupt_main, watch_stdin_eof

        watch_stdin_eof(interrupt_main)
