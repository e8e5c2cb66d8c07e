"""Refine in Blender: re-fuse a take's views file with other options and rebuild it in place.

A 4-person, 4-view synthetic take ('realistic' noise, 1000 timesteps at 30 fps by default) is
fused, written and built in bpy; then Refine (fusion with a longer smoothing window, the person
map with a name and a delete applied, the take written, the scene rebuilt) is timed. Prints the
wall and CPU time of each part.

    .venv/bin/python benchmarks/bench_refine.py [--frames 1000] [--repeats 3] [--smplx FILE]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smplx", help="SMPLX_NEUTRAL.npz (default: none, mannequin bodies)")
    args = parser.parse_args(argv)

    import bpy

    from chromm_addon.blender import people_edits
    from chromm_addon.blender.results import apply_take
    from chromm_addon.evaluation.simulate import simulate_views
    from chromm_addon.evaluation.synthetic import make_scene
    from chromm_addon.fusion.pipeline import fuse_views
    from chromm_addon.io.take import write_take
    from chromm_addon.io.views import write_views
    from chromm_addon.options import FuseOptions

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = make_scene(num_people=args.people, num_views=args.views, num_frames=args.frames, seed=0)
    views = simulate_views(scene, "realistic", seed=1000)
    with tempfile.TemporaryDirectory() as tmp:
        views_path = write_views(os.path.join(tmp, "views.npz"), views)
        take_path = write_take(os.path.join(tmp, "take.npz"), fuse_views(views))
        collection, _ = apply_take(bpy.context.scene, take_path, "shot", smplx_path=args.smplx,
                                   views_path=views_path)
        collection, _ = people_edits.edit_people(bpy.context.scene, collection, rename=(0, "Ana"))
        collection, _ = people_edits.edit_people(bpy.context.scene, collection,
                                                 edit={"op": "delete", "person": args.people - 1})
        print(f"{args.people} people, {args.views} views, {args.frames} timesteps, "
              f"{views.num_detections} detections; {'model ' + args.smplx if args.smplx else 'no model file (mannequin bodies)'}")
        print("| repeat | Refine wall s | Refine CPU s |")
        print("|---|---|---|")
        for r in range(args.repeats):
            window = 0.5 + 0.1 * r
            start, cpu = time.perf_counter(), time.process_time()
            collection, summary, problems = people_edits.refine(
                bpy.context.scene, collection, FuseOptions(smooth_window_s=window), smplx_path=args.smplx)
            print(f"| {r} | {time.perf_counter() - start:.2f} | {time.process_time() - cpu:.2f} |", flush=True)
            assert not problems, problems
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
