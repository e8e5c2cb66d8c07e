"""`model info`: per-component parameter counts of the network, built without allocating weights."""

from ..errors import ChrommError


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="parameter counts per component (meta device, no weights)")
    info.add_argument("--preset", choices=("full", "tiny"), default="full",
                      help="network configuration (default: full, the published checkpoints')")


def run(args):
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ChrommError("torch is not installed; `model info` needs the backend environment") from None
    from ..network.info import format_table, parameter_table

    print(f"CHROMM network, '{args.preset}' configuration (state-dict elements, meta device)")
    print(format_table(parameter_table(args.preset)))
    return 0
