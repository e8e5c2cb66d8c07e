"""`demo` command (implemented by its issue's module)."""

from ..errors import ChrommError


def add_arguments(parser):
    parser.add_argument("rest", nargs="*")


def run(args):
    raise ChrommError("the 'demo' command is not available in this build yet")
