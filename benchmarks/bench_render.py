"""Overlay-render benchmark: seconds per output frame at 960x540 (the `render` command's work).

    .venv/bin/python benchmarks/bench_render.py [--people 4 --frames 30 --size 960x540]
                                                [--engine AUTO|WORKBENCH|CYCLES] [--smplx FILE]

A synthetic scene (chromm_addon.evaluation.synthetic, P people walking, points on the floor and
walls) is seen by view 0 at the given size; its ground truth drawn from that camera is the
source clip (.mp4). The take built from the scene (mannequins, or SMPL-X meshes with --smplx) is
rendered over it with chromm_addon.blender.overlay.render_overlay. Reported: wall and process CPU
seconds per frame for the whole overlay (decode, render, composite, labels, encode), and for the
people render alone (the Blender part). Results go into docs/scene-builder.md by hand, with the
machine they ran on.
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--engine", default="AUTO")
    parser.add_argument("--smplx")
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.lower().split("x"))

    import bpy

    from chromm_addon.backend.demo_network import write_view_clip
    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.overlay import PeopleRenderer, render_overlay
    from chromm_addon.blender.render_setup import take_cameras
    from chromm_addon.body.model_file import load_smplx_model
    from chromm_addon.evaluation.synthetic import make_scene

    model = load_smplx_model(args.smplx) if args.smplx else None
    scene = make_scene(num_people=args.people, num_views=1, num_frames=args.frames, seed=0,
                       image_size=(width, height), model=model)
    with tempfile.TemporaryDirectory() as folder:
        clip = write_view_clip(os.path.join(folder, "cam0.mp4"), scene, scene.joints(model), 0)
        take = scene.to_take()
        take.meta["sources"] = [{"path": clip, "start_time": 0.0}]
        bpy.ops.wm.read_factory_settings(use_empty=True)
        collection = build_take(take, name="bench", smplx_model=model)

        wall, cpu = time.perf_counter(), time.process_time()
        count = render_overlay(collection, 0, os.path.join(folder, "o.mp4"), os.path.join(folder, "o.png"),
                               engine=args.engine)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

        cam = take_cameras(collection)[0]
        with PeopleRenderer(collection, cam, (width, height), 100, args.engine) as render:
            render(1)  # warm-up (shader compilation)
            r_wall, r_cpu = time.perf_counter(), time.process_time()
            for t in range(args.frames):
                render(1 + t)
            r_wall, r_cpu = time.perf_counter() - r_wall, time.process_time() - r_cpu
            engine = render.engines[0]
    print(f"overlay {width}x{height}, {args.people} people ({'SMPL-X' if model else 'mannequins'}), "
          f"{count} frames, engine {engine}")
    print(f"  whole overlay: {wall / count:.3f} s/frame wall, {cpu / count:.3f} s/frame process CPU")
    print(f"  people render only: {r_wall / args.frames:.3f} s/frame wall, "
          f"{r_cpu / args.frames:.3f} s/frame process CPU")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
