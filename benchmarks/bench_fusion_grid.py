"""Test-time modules on simulated network output: accuracy and speed over a grid.

For every (people, views, noise) cell: make a synthetic scene (everyone the same shape and
clothing by default), simulate the network's views file, run `fuse_views`, and evaluate against
the ground truth; the fused W-MPJPE is compared with the best single view (an oracle baseline:
true association and scale, see chromm_addon/evaluation/evaluate.py). Prints a markdown table.

    .venv/bin/python benchmarks/bench_fusion_grid.py                 # the full grid
    .venv/bin/python benchmarks/bench_fusion_grid.py --people 4 --views 4 --noise realistic --modes raw,default

Modes (`--modes`, comma-separated): `raw` (no temporal filter, no foot locking: the fusion
alone), `default[:W]` (FuseOptions() as shipped, or with half window W s), `quadratic[:W]` / `one_euro[:MIN_CUTOFF:BETA]`
(that filter on people and cameras, W the half window in seconds, no foot locking).
"""

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chromm_addon.evaluation.evaluate import evaluate_single_views, evaluate_take  # noqa: E402
from chromm_addon.evaluation.simulate import PRESETS, simulate_views  # noqa: E402
from chromm_addon.evaluation.synthetic import make_scene  # noqa: E402

COLUMNS = ("seed", "people", "views", "noise", "mode", "dets", "assoc %", "pair P/R %", "ID sw", "MOTA %",
           "cover %", "W-MPJPE fused", "W-MPJPE 1-view", "W gain %", "WA fused", "WA 1-view",
           "world MPJPE", "PA-MPJPE", "jitter", "GT jitter", "slide", "foot z", "cam rot °", "scale err %",
           "fuse s", "fuse CPU s")


def mode_options(mode):
    """FuseOptions for a benchmark mode (see the module docstring)."""
    from chromm_addon.fusion.pipeline import FuseOptions

    name, *args = mode.split(":")
    raw = {f: False for f in ("smooth", "smooth_cameras", "foot_lock") if hasattr(FuseOptions, f)}
    if name == "raw":
        return FuseOptions(**raw)
    if name == "default":
        return FuseOptions(**({"smooth_window_s": float(args[0])} if args else {}))
    if name == "quadratic":
        window = {"smooth_window_s": float(args[0])} if args else {}
        return FuseOptions(**{**raw, "smooth": True, "smooth_cameras": True, **window})
    if name == "one_euro":
        extra = {}
        if args:
            extra = {"one_euro_min_cutoff_hz": float(args[0]), "one_euro_beta": float(args[1])}
        return FuseOptions(**{**raw, "smooth": True, "smooth_cameras": True, "smooth_filter": "one_euro",
                              **extra})
    raise SystemExit(f"unknown mode {mode!r}")


def _ints(text):
    return [int(x) for x in text.split(",") if x]


def run_cell(people, views, noise, frames, seed, same_shape, mode, model, camera_motion=0.0,
             gap_rate=0.0):
    from chromm_addon.fusion.pipeline import fuse_views

    scene = make_scene(num_people=people, num_views=views, num_frames=frames, seed=seed,
                       same_shape=same_shape, model=model, camera_motion=camera_motion)
    sim = simulate_views(scene, dataclasses.replace(PRESETS[noise], gap_rate=gap_rate), seed=seed + 1000)
    start, start_cpu = time.perf_counter(), time.process_time()
    take = fuse_views(sim, smplx_model=model, options=mode_options(mode))
    fuse_s, fuse_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    fused = evaluate_take(take, scene, model=model, views=sim)
    single = evaluate_single_views(sim, scene, model=model)["best"]
    return {"fused": fused, "single": single, "fuse_s": fuse_s, "fuse_cpu": fuse_cpu,
            "dets": sim.num_detections}


def format_row(seed, people, views, noise, mode, r):
    f, s = r["fused"], r["single"]
    mm = lambda x: f"{1000 * x:.0f}" if np.isfinite(x) else "-"  # noqa: E731
    base = s.get("w_mpjpe", np.nan)
    gain = 100 * (1 - f.get("w_mpjpe", np.nan) / base) if base > 1e-3 else np.nan  # not on clean input
    return [str(seed), str(people), str(views), noise, mode, str(r["dets"]),
            f"{100 * f.get('assoc_accuracy', np.nan):.2f}",
            f"{100 * f.get('assoc_pair_precision', np.nan):.1f}"
            f"/{100 * f.get('assoc_pair_recall', np.nan):.1f}",
            str(f["id_switches"]), f"{100 * f['mota']:.1f}", f"{100 * f['coverage']:.1f}",
            mm(f.get("w_mpjpe", np.nan)), mm(s.get("w_mpjpe", np.nan)),
            f"{gain:.0f}" if np.isfinite(gain) else "-",
            mm(f.get("wa_mpjpe", np.nan)), mm(s.get("wa_mpjpe", np.nan)),
            mm(f.get("world_mpjpe", np.nan)), mm(f.get("pa_mpjpe", np.nan)),
            f"{f.get('jitter', np.nan) / 10:.0f}", f"{f.get('gt_jitter', np.nan) / 10:.1f}",
            f"{1000 * f.get('foot_sliding', np.nan):.1f}", f"{1000 * f.get('foot_height', np.nan):.1f}",
            f"{f['cam_rot_deg']:.2f}",
            f"{100 * abs(f['cam_scale'] - 1):.1f}", f"{r['fuse_s']:.2f}", f"{r['fuse_cpu']:.2f}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default="1,2,4,8")
    parser.add_argument("--views", default="2,4,8")
    parser.add_argument("--noise", default="low,realistic,high", help=f"of {sorted(PRESETS)}")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="run seeds seed .. seed+N-1")
    parser.add_argument("--different-shapes", action="store_true",
                        help="random betas per person (default: everyone the same shape)")
    parser.add_argument("--camera-motion", type=float, default=0.0,
                        help="metres of slow camera drift along the ring (0: static cameras)")
    parser.add_argument("--gap-rate", type=float, default=0.0,
                        help="all-view gaps (0.3-1 s) per person and second, to test re-identification")
    parser.add_argument("--modes", default="raw,default",
                        help="comma-separated: raw, default[:W], quadratic[:W], one_euro[:MIN_CUTOFF:BETA]")
    parser.add_argument("--smplx", help="SMPLX_NEUTRAL.npz (default: the approximate skeleton)")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)

    model = None
    if args.smplx:
        from chromm_addon.body.model_file import load_smplx_model
        model = load_smplx_model(args.smplx)
    modes = args.modes.split(",")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    print(lines[0], lines[1], sep="\n", flush=True)
    for people in _ints(args.people):
        for views in _ints(args.views):
            for noise in args.noise.split(","):
                for mode in modes:
                    for seed in range(args.seed, args.seed + args.seeds):
                        r = run_cell(people, views, noise, args.frames, seed,
                                     not args.different_shapes, mode, model, args.camera_motion,
                                     args.gap_rate)
                        row = format_row(seed, people, views, noise, mode, r)
                        lines.append("| " + " | ".join(row) + " |")
                        print(lines[-1], flush=True)
    footer = (f"\n{args.frames} timesteps at 30 fps, "
              f"{'random shapes' if args.different_shapes else 'identical shapes'}, "
              f"camera drift {args.camera_motion} m, all-view gaps {args.gap_rate}/s per person, "
              f"{'SMPL-X model ' + args.smplx if model else 'approximate skeleton'}; "
              "lengths in mm, jitter in 10 m/s^3; slide: foot sliding on ground-truth contact frames (mm per "
              "frame), foot z: |height error| of planted feet (mm).")
    print(footer)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n" + footer + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
