"""`selftest`: is this backend ready? Python and torch, the device and its memory, the weights
(present, the hub's hash, keys that fit), the SMPL-X file, and a dry run of the network on a few
frames that ends with "Ready: <GPU>, about N s per 100 timesteps at 4 views".

Each finding is one line (`--json`: one JSON object per line, which the add-on's Check reads as
they come): level ok / warning / error, what was found, the fix in plain words, and the add-on
button that applies it (`install_backend`, `download_weights`, `choose_smplx`) where one exists.
"""

import argparse
import json
import os
import platform
import sys
import time

from ..errors import ChrommError

from ..client.setup_check import DOWNLOAD, INSTALL


def add_arguments(parser):
    from ..options import SERVICE, ReconstructOptions, add_arguments as add_option_arguments

    # The service's options of the schema, as `serve` takes them: --network, --device, --weights,
    # --smplx (--seed): the self-test checks what a service started with them would run.
    add_option_arguments(parser, ReconstructOptions, scopes=(SERVICE,), config=False)
    parser.add_argument("--tiny-network", dest="network", action="store_const", const="tiny",
                        help=argparse.SUPPRESS)  # shorthand of --network tiny (tests, CI)
    parser.add_argument("--no-dry-run", dest="dry_run", action="store_false",
                        help="skip running the network on a few frames")
    parser.add_argument("--json", action="store_true", help="one JSON object per finding")


class Report:
    def __init__(self, as_json):
        self.as_json = as_json
        self.errors = []

    def __call__(self, level, what, fix="", action=""):
        if level == "error":
            self.errors.append(what)
        if self.as_json:
            print(json.dumps({"level": level, "what": what, "fix": fix, "action": action}), flush=True)
        else:
            mark = {"ok": "ok     ", "warning": "warning", "error": "ERROR  "}[level]
            print(f"{mark} {what}" + (f"  -> {fix}" if fix else ""), flush=True)


def gb(n):
    return f"{n / 1e9:.1f} GB"


def run(args):
    from ..options import SERVICE, ReconstructOptions, from_args

    options = from_args(ReconstructOptions, args, scopes=(SERVICE,))
    report = Report(args.json)
    report("ok", f"Python {platform.python_version()} ({sys.executable})")
    try:
        import torch
    except ImportError as exc:
        report("error", f"the backend has no PyTorch ({exc})",
               "press Install Backend to install or repair it", INSTALL)
        return _finish(report, None)
    device = _check_device(report, options, torch)
    runnable = _check_weights(report, options) if not options.tiny_network else True
    from ..body.model_file import resolve_model_path

    _check_smplx(report, resolve_model_path(options.smplx))
    if device is not None and runnable and args.dry_run:
        _dry_run(report, options, device)
    return _finish(report, device)


def _finish(report, device):
    if report.errors:
        raise ChrommError(f"not ready: {report.errors[0]}"
                          + (f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""))
    return 0


def _check_device(report, options, torch):
    from ..backend.device import device_info, min_vram_bytes

    report("ok", f"PyTorch {torch.__version__}"
                 + (f", built for CUDA {torch.version.cuda}" if torch.version.cuda else ", CPU-only build"))
    try:
        info = device_info(options.device, tiny=options.tiny_network)
    except ChrommError as exc:
        report("error", str(exc), "choose 'auto' or 'cpu' as the device, or install the GPU build "
                                  "with Install Backend", INSTALL)
        return None
    if info["gpu"] is None:
        if options.tiny_network:
            report("ok", "device: cpu (the tiny test network always runs there)")
        elif torch.version.cuda:
            report("warning", "no CUDA GPU found by PyTorch: the network runs on the CPU, "
                              "which takes hours per minute of video",
                   "check the NVIDIA driver (nvidia-smi), then run Check again")
        else:
            report("warning", "this PyTorch is the CPU-only build: the network runs on the CPU, "
                              "which takes hours per minute of video",
                   "with an NVIDIA GPU, press Install Backend to install the CUDA build", INSTALL)
        return info
    need = min_vram_bytes()
    line = (f"GPU: {info['gpu']} ({info['device']}), {gb(info['vram_total_bytes'])} memory, "
            f"{gb(info['vram_free_bytes'])} free; the network needs {gb(need)}")
    if info["vram_total_bytes"] < need:
        report("error", line, "this GPU has too little memory for the network; use a GPU with "
                              "at least 12 GB, or Remote mode with a GPU server")
    elif info["vram_free_bytes"] < need:
        report("warning", line, "close other programs that use the GPU (games, other renders)")
    else:
        report("ok", line)
    return info


def _check_weights(report, options):
    from ..network import hub
    from ..network import weights as w
    from .weights import _check_file

    found = w.find_weight_files(options.weights)
    manifest = hub.read_manifest(found.folder)
    ok = True
    expected = {}
    for kind in ("pi3x", "multihmr", "chromm"):
        path = getattr(found, kind)
        if path is None:
            if kind != "chromm":
                ok = False
                report("error", f"{hub.HUB_FILES[kind].title} weights missing: "
                                f"{found.where_to_put(kind)}", "press Download Weights", DOWNLOAD)
            continue
        entry = manifest.get(kind) or {}
        size = os.path.getsize(path)
        digest = w.sha256_file(path)  # cached by size and mtime: hashed once
        if entry.get("hash") and len(entry["hash"]) == 64 and entry["hash"] != digest:
            ok = False
            report("error", f"{path}: its hash differs from the hub's (damaged or changed)",
                   "press Download Weights to fetch it again", DOWNLOAD)
            continue
        try:
            if not expected:
                from ..network.info import build_on_meta

                expected.update({k: w.module_shapes(m) for k, m in build_on_meta("full").items()})
            _check_file(kind, path, expected)
        except ChrommError as exc:
            ok = False
            report("error", f"{exc}", "press Download Weights to fetch the right file", DOWNLOAD)
            continue
        checked = "the hub's hash" if entry.get("hash") == digest else f"sha256 {digest[:12]}..."
        report("ok", f"{os.path.basename(path)}: {hub.format_bytes(size)}, {checked}, keys fit")
    return ok


def _check_smplx(report, path):
    from ..client.setup_check import check_smplx_file

    f = check_smplx_file(path)
    report(f.level, f.what, f.fix, f.action)


def _dry_run(report, options, info):
    import numpy as np

    from ..backend.device import CHECK_VIEWS
    from ..network.registry import load_runner

    started = time.monotonic()
    try:
        runner = load_runner(options)
        loaded = time.monotonic() - started
        rng = np.random.default_rng(0)
        names = [f"view{i}" for i in range(CHECK_VIEWS)]

        def window(steps):
            frames = [rng.integers(0, 256, (steps, 360, 640, 3), dtype=np.uint8) for _ in names]
            t0 = time.monotonic()
            runner.run_window(frames, names, 30.0)
            return time.monotonic() - t0

        window(1)                 # first call: kernels, caches
        steps = 2
        per_step = window(steps) / steps
    except ChrommError as exc:
        report("error", f"the network did not run: {exc}", "press Download Weights", DOWNLOAD)
        return
    except Exception as exc:  # out of memory, a driver error: say what happened
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        report("error", f"the network did not run on {info['device']}: {first}",
               "close other programs that use the GPU, or use Remote mode with a GPU server")
        return
    where = info["gpu"] or "CPU"
    network = " (tiny test network)" if options.tiny_network else ""
    head = "Ready" if not report.errors else "The network runs"
    report("ok", f"{head}: {where}{network}, about {per_step * 100:.0f} s per 100 timesteps at "
                 f"{CHECK_VIEWS} views (network loaded in {loaded:.0f} s)")
