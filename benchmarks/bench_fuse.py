"""Speed of the test-time modules: `fuse` on 4 views x 300 timesteps x 4 people (the issue's case).

Simulates the views file once, then times `fuse_views` (and the whole command: read the views
file, fuse, write the take) several times; reports the best and median wall-clock time and the
process CPU time (less disturbed by other load on the machine). With `--ablation`, instead
measures what each design choice of the modules is worth on the same simulated take (errors
against the ground truth with one option changed at a time).

    .venv/bin/python benchmarks/bench_fuse.py [--people 4 --views 4 --frames 300 --repeat 5]
    .venv/bin/python benchmarks/bench_fuse.py --ablation
"""

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chromm_addon.commands import fuse as fuse_command  # noqa: E402
from chromm_addon.evaluation.simulate import simulate_views  # noqa: E402
from chromm_addon.evaluation.synthetic import make_scene  # noqa: E402
from chromm_addon.fusion.association import AssociationOptions  # noqa: E402
from chromm_addon.fusion.fusion import FusionOptions  # noqa: E402
from chromm_addon.fusion.pipeline import FuseOptions, fuse_views  # noqa: E402
from chromm_addon.fusion.tracking import TrackingOptions  # noqa: E402

ABLATIONS = (
    ("defaults", FuseOptions()),
    ("plain mean of 3D heads (depth_sigma_ratio=1)", FuseOptions(fusion=FusionOptions(depth_sigma_ratio=1.0))),
    ("depth_sigma_ratio=2", FuseOptions(fusion=FusionOptions(depth_sigma_ratio=2.0))),
    ("depth_sigma_ratio=5", FuseOptions(fusion=FusionOptions(depth_sigma_ratio=5.0))),
    ("no pelvis (tilt) correction", FuseOptions(fusion=FusionOptions(pelvis_correction=False))),
    ("no outlier rejection", FuseOptions(fusion=FusionOptions(head_outlier_m=float("inf"),
                                                              rot_outlier_rad=float("inf")))),
    ("fixed association gates", FuseOptions(association=AssociationOptions(adaptive=False))),
    ("no root term in tracking", FuseOptions(tracking=TrackingOptions(turn_cost_m_per_rad=0.0))),
    ("paper's length ratio for the scale", FuseOptions(scale_along_prediction=False)),
    ("no temporal filter", FuseOptions(smooth=False, smooth_cameras=False)),
)


def ablation(scene, views):
    from chromm_addon.evaluation.evaluate import evaluate_single_views, evaluate_take

    single = evaluate_single_views(views, scene)["best"]
    print(f"best single view: W-MPJPE {1000 * single['w_mpjpe']:.0f} mm, "
          f"WA-MPJPE {1000 * single['wa_mpjpe']:.0f} mm")
    print("| variant | W-MPJPE mm | WA-MPJPE mm | world MPJPE mm | assoc % | ID sw | scale err % | jitter m/s^3 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, options in ABLATIONS:
        r = evaluate_take(fuse_views(views, options=options), scene, views=views)
        print(f"| {name} | {1000 * r['w_mpjpe']:.0f} | {1000 * r['wa_mpjpe']:.0f} | "
              f"{1000 * r['world_mpjpe']:.0f} | {100 * r['assoc_accuracy']:.2f} | {r['id_switches']} | "
              f"{100 * abs(r['cam_scale'] - 1):.2f} | {r['jitter']:.0f} |", flush=True)
from chromm_addon.io.views import write_views  # noqa: E402


def timed(fn, repeat):
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), statistics.median(walls), min(cpus)


def run_command(views_path, take_path):
    parser = argparse.ArgumentParser()
    fuse_command.add_arguments(parser)
    with contextlib.redirect_stdout(io.StringIO()):
        fuse_command.run(parser.parse_args([views_path, "-o", take_path]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--noise", default="realistic")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation", action="store_true", help="accuracy per design choice")
    args = parser.parse_args(argv)

    scene = make_scene(num_people=args.people, num_views=args.views, num_frames=args.frames,
                       seed=args.seed, same_shape=True)
    views = simulate_views(scene, args.noise, seed=args.seed + 1000)
    print(f"{args.views} views x {args.frames} timesteps x {args.people} people, "
          f"{views.num_detections} detections, {len(views.points)} scene points")
    if args.ablation:
        ablation(scene, views)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        views_path = os.path.join(tmp, "views.npz")
        take_path = os.path.join(tmp, "take.npz")
        write_views(views_path, views)
        cases = (
            ("fuse_views", lambda: fuse_views(views)),
            ("fuse_views --no-smooth", lambda: fuse_views(views, options=FuseOptions(smooth=False))),
            ("fuse command (read + fuse + write)",
             lambda: run_command(views_path, take_path)),
        )
        print("| case | best wall s | median wall s | best CPU s |")
        print("|---|---|---|---|")
        for name, fn in cases:
            best, median, cpu = timed(fn, args.repeat)
            print(f"| {name} | {best:.2f} | {median:.2f} | {cpu:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
