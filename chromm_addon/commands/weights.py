"""`weights check [DIR]`: which checkpoint files are present, their hashes, and whether they fit.
`weights download [DIR] --accept-licences`: fetch them from the Hugging Face hub (`network.hub`).

Keys and shapes are compared with the architecture built on the meta device; the files' tensors
are never read (safetensors headers, a memory-mapped pickle), so checking 5 GB takes seconds
plus the hashing.
"""

import os

from ..errors import ChrommError
from ..network import hub


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="check the files in a weights folder")
    check.add_argument("dir", nargs="?", default=None,
                       help="weights folder (default: $CHROMM_WEIGHTS, else "
                            "$XDG_CACHE_HOME/chromm/weights or ~/.cache/chromm/weights)")
    check.add_argument("--no-hash", action="store_true", help="skip the SHA-256 of each file")
    check.add_argument("--preset", choices=("full", "tiny"), default="full",
                       help="architecture to check against (tiny: the test configuration)")
    check.set_defaults(_action=run_check)
    dl = sub.add_parser("download", help="download the network weights from the Hugging Face hub")
    dl.add_argument("dir", nargs="?", default=None, help="weights folder (default as for check)")
    dl.add_argument("--accept-licences", action="store_true",
                    help="accept the licence of every file downloaded: " + "; ".join(
                        hub.licence_line(k) for k in hub.HUB_FILES))
    dl.add_argument("--accept", action="append", default=[], choices=list(hub.HUB_FILES),
                    metavar="FILE", help="accept one file's licence (pi3x or multihmr); repeatable")
    dl.add_argument("--only", action="append", choices=list(hub.HUB_FILES), metavar="FILE",
                    help="download only this file (pi3x or multihmr); repeatable")
    dl.add_argument("--token", default=None,
                    help="Hugging Face token (default: $HF_TOKEN or the hub's saved login)")
    dl.add_argument("--no-online-access", dest="online_access", action="store_false",
                    help="refuse to go online (the add-on passes this when Blender's "
                         "'Allow Online Access' is off)")
    dl.add_argument("--json", action="store_true",
                    help="progress as one JSON object per line on stdout (for the add-on)")
    dl.set_defaults(_action=run_download)


def run(args):
    return args._action(args)


def run_download(args):
    import json
    import sys

    kinds = args.only or list(hub.HUB_FILES)
    accepted = list(hub.HUB_FILES) if args.accept_licences else args.accept

    def emit(record):
        if args.json:
            print(json.dumps(record), flush=True)
        elif record.get("event") == "progress":
            end = "\r" if sys.stderr.isatty() else "\n"
            print(hub.progress_line(record), end=end, file=sys.stderr, flush=True)
        else:
            print(record["message"], flush=True)

    paths = hub.download_weights(
        args.dir, accepted, kinds=kinds, token=args.token, online_access=args.online_access,
        progress=lambda p: emit(dict(p, event="progress")),
        log=lambda message: emit({"event": "log", "message": message}))
    emit({"event": "done", "message": "ok: " + ", ".join(paths.values()), "paths": paths})
    return 0


def _size(path):
    n = os.path.getsize(path)
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.2f} MB"


def _check_file(kind, path, expected):
    """Key report of one file against the architecture; raises ChrommError when it does not fit."""
    from ..network import weights as w

    if kind == "chromm":
        w.check_chromm_metadata(path)
        parts = w.split_chromm_state(w.read_key_shapes(path, "chromm"), path)
        reports = [w.match_shapes(expected[part], parts[part], path, w.UNUSED_PREFIXES.get(part, ()), f"{part}.",
                                  w.OPTIONAL_PREFIXES.get(part, ()))
                   for part in ("heads", "pi3x", "multihmr") if parts[part]]
    else:
        reports = [w.match_shapes(expected[kind], w.read_key_shapes(path, kind), path, w.UNUSED_PREFIXES[kind],
                                  optional_prefixes=w.OPTIONAL_PREFIXES.get(kind, ()))]
    for report in reports:
        if report.missing:
            raise ChrommError(f"{path}: {len(report.missing)} keys the network needs are missing "
                              f"({', '.join(report.missing[:3])})")
    return "; ".join(r.summary() for r in reports)


def run_check(args):
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ChrommError("torch is not installed; `weights check` needs the backend environment") from None
    from ..network import weights as w
    from ..network.info import build_on_meta

    found = w.find_weight_files(args.dir)
    if not os.path.isdir(found.folder):
        raise ChrommError(f"{found.folder}: weights folder does not exist; create it and put "
                          f"{w.PI3X_FILES[0]} and {w.MULTIHMR_FILE} there")
    expected = {}

    def architecture():   # built on first use: a folder with nothing in it needs no network
        if not expected:
            expected.update({k: w.module_shapes(m) for k, m in build_on_meta(args.preset).items()})
        return expected

    print(f"weights folder: {found.folder}")
    problems = []
    for kind, required in (("pi3x", True), ("multihmr", True), ("chromm", False)):
        path = getattr(found, kind)
        if path is None:
            state = "MISSING" if required else "absent (optional)"
            print(f"{kind:9s} {state}: {w.SOURCES[kind]}")
            if required:
                print(f"{'':9s} put it at {found.where_to_put(kind)}")
                problems.append(f"{os.path.relpath(found.where_to_put(kind), found.folder)} is missing")
            continue
        print(f"{kind:9s} present: {path} ({_size(path)})")
        if not args.no_hash:
            print(f"{'':9s} sha256 {w.sha256_file(path)}")
        try:
            print(f"{'':9s} keys: {_check_file(kind, path, architecture())}")
        except ChrommError as exc:
            print(f"{'':9s} INVALID: {exc}")
            problems.append(str(exc))
    if problems:
        raise ChrommError(f"{found.folder}: " + "; ".join(problems))
    mode = "CHROMM heads" if found.chromm else "composition mode (Pi3X + Multi-HMR)"
    print(f"ok: the network can run ({mode})")
    return 0
