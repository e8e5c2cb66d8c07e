"""`batch MANIFEST -o OUT_DIR`: many takes, here one after another or on a Ray cluster.

The manifest (TOML or JSON, docs/batch.md) lists takes with their clips and options. Each take
is written to OUT_DIR/<take>/ (take.npz, views.npz, optionally take.blend and overlay.mp4);
OUT_DIR/batch.json holds every take's status, timings and error and is rewritten as takes finish. Running the same
command again skips the takes that are done and redoes the rest.
"""

import argparse


def add_cluster_arguments(parser, ray_help):
    """--ray, --gpus-per-worker, --workers (shared with `serve`)."""
    parser.add_argument("--ray", metavar="auto|local|ADDRESS", help=ray_help)
    parser.add_argument("--gpus-per-worker", type=float, default=1.0,
                        help="with --ray: GPUs each network worker takes (default 1; 0: CPU workers)")
    parser.add_argument("--workers", type=int,
                        help="with --ray: network workers (default: the cluster's GPUs / --gpus-per-worker, "
                             "or 1)")


def add_arguments(parser):
    parser.add_argument("manifest", metavar="MANIFEST", help="the takes to run (.toml or .json)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for the takes' outputs")
    add_cluster_arguments(parser, "run on Ray: 'auto' (the cluster this machine belongs to), 'local' "
                                  "(start one here) or the head's HOST:PORT; without it the takes run "
                                  "here, one by one")
    parser.add_argument("--max-in-flight", type=int,
                        help="windows decoded and not yet through the network, over the batch "
                             "(default 2 per worker)")
    from ..options import SERVICE, ReconstructOptions, add_arguments as add_option_arguments

    # The options schema's service options (network, device, weights, smplx): one set per batch.
    add_option_arguments(parser, ReconstructOptions, scopes=(SERVICE,), config=False)
    parser.add_argument("--tiny-network", dest="network", action="store_const", const="tiny",
                        help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    import os

    from ..backend.batch import Batch, LocalExecutor, check_output_folder, read_manifest
    from ..backend.progress import BatchBar
    from ..errors import ChrommError
    from ..network.registry import check_runner_options
    from ..options import SERVICE, ReconstructOptions, from_args

    if args.max_in_flight is not None and args.max_in_flight < 1:
        raise ChrommError(f"--max-in-flight {args.max_in_flight}: expected at least 1")
    runner_options = from_args(ReconstructOptions, args, scopes=(SERVICE,))
    specs = read_manifest(args.manifest, runner_options)
    check_output_folder(args.output)
    if args.ray is None:  # on Ray the workers check their own device and weights when they start
        check_runner_options(runner_options)
    if any(s.blend or s.overlay is not None for s in specs):
        import importlib.util

        if importlib.util.find_spec("bpy") is None:
            raise ChrommError(f"{args.manifest}: a take asks for blend or overlay but the bpy module is "
                              "missing (run with the project's .venv)")
    if args.ray is None:
        executor = LocalExecutor(runner_options)
    else:
        from ..backend.cluster import RayExecutor, connect

        executor = RayExecutor(runner_options, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                               description=connect(args.ray))
    bar = None if args.quiet else BatchBar(len(specs))
    try:
        record = Batch(specs, args.output, executor, max_in_flight=args.max_in_flight, events=bar,
                       manifest=os.path.abspath(args.manifest)).run()
    finally:
        if bar is not None:
            bar.finish()
        executor.shutdown()
    counts = record["counts"]
    print(f"{len(specs)} take(s): {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} "
          f"failed; {os.path.join(args.output, 'batch.json')}")
    for entry in record["takes"]:
        if entry["status"] == "failed":
            print(f"  {entry['name']}: {entry['error']}")
    return 1 if counts["failed"] else 0
