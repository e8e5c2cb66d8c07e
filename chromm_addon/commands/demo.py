"""`demo --out DIR [--smplx FILE] [--people 4 --views 4 --frames 120]`: what `make demo` runs.

Without network weights the network cannot run, so the demo says so and exercises everything
after it on a synthetic scene: simulated per-view network output (views.npz), the test-time
modules (take.npz), reconstruction errors against the ground truth, the .blend, and the overlay
render (overlay.mp4, preview.png) of the reconstructed people over view 0's "footage" (the
ground truth drawn from that camera).
"""

import os

NOISE_CHOICES = ("clean", "low", "realistic", "high")


def add_arguments(parser):
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument("--smplx", help="SMPLX_NEUTRAL.npz for skinned bodies "
                        "(default: $CHROMM_SMPLX_MODEL; without one, armatures on an approximate skeleton)")
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", choices=NOISE_CHOICES, default="realistic",
                        help="simulated network error level (default: realistic)")
    parser.add_argument("--no-blend", action="store_true", help="stop after the take file")
    parser.add_argument("--weights", help="network weights folder (default: the installed weights); "
                        "with weights the demo reconstructs a rendered sample with the network")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (network demo)")


def run(args):
    from ..backend.demo_network import network_available, run_network_demo

    available, why = network_available(args.weights)
    if available:
        print("network: weights found; rendering a short multi-view sample and reconstructing it")
        files = run_network_demo(args.out, smplx=args.smplx, weights=args.weights, device=args.device,
                                 num_views=min(max(args.views, 2), 4), num_people=min(max(args.people, 1), 3),
                                 seed=args.seed, blend=not args.no_blend)
        if files.get("blend"):  # the .blend was built, so bpy is here: the overlay too
            from ..body.model_file import resolve_model_path

            render_demo_overlay(args.out, files["take"], resolve_model_path(args.smplx),
                                "the rendered sample")
        return 0
    print(f"network weights: {why}")
    print("network: NOT RUN (no CHROMM network weights are installed); this demo simulates the "
          "network's per-view output on a synthetic scene and runs everything after it.")
    return run_synthetic(args)


def _check_args(args):
    from ..errors import ChrommError

    for name, low in (("people", 0), ("views", 1), ("frames", 4)):
        if getattr(args, name) < low:
            raise ChrommError(f"demo: --{name} must be at least {low}")


def run_synthetic(args):
    import time

    from ..body.model_file import configured_model, resolve_model_path
    from ..evaluation.evaluate import evaluate_single_views, evaluate_take
    from ..evaluation.simulate import PRESETS, simulate_views
    from ..evaluation.synthetic import make_scene
    from ..fusion.pipeline import fuse_views
    from ..io.take import write_take
    from ..io.views import write_views

    _check_args(args)
    model_path = resolve_model_path(args.smplx)
    model = configured_model(model_path)
    os.makedirs(args.out, exist_ok=True)
    views_path = os.path.join(args.out, "views.npz")
    take_path = os.path.join(args.out, "take.npz")
    blend_path = os.path.join(args.out, "take.blend")

    start = time.perf_counter()
    scene = make_scene(num_people=args.people, num_views=args.views, num_frames=args.frames,
                       seed=args.seed, same_shape=True, model=model)
    views = simulate_views(scene, PRESETS[args.noise], seed=args.seed, model=model)
    write_views(views_path, views)
    print(f"scene: {args.people} people with the same shape, {args.views} cameras, "
          f"{args.frames} timesteps at {scene.fps:g} fps; simulated '{args.noise}' network output: "
          f"{views.num_detections} detections -> {views_path}")

    fuse_start = time.perf_counter()
    take = fuse_views(views, model)
    if not args.no_blend:
        # View 0's "footage": the ground truth drawn from its camera, for the overlay render.
        from ..backend.demo_network import write_view_clip

        clip = write_view_clip(os.path.join(args.out, "clips", "cam0.mp4"), scene, scene.joints(model), 0)
        take.meta["sources"] = ([{"path": os.path.abspath(clip), "start_time": 0.0}]
                                + [None] * (args.views - 1))
    write_take(take_path, take)
    src = take.meta["source"]
    print(f"fuse: {take.num_people} people, scene scale x{src['scale']:.3f}, up from "
          f"{src['up']}, in {time.perf_counter() - fuse_start:.2f} s -> {take_path}")

    result = evaluate_take(take, scene, model=model, views=views)
    single = evaluate_single_views(views, scene, model=model)["best"]
    _print_errors(result, single)

    if args.no_blend:
        print(f"done in {time.perf_counter() - start:.1f} s (no .blend asked for)")
        return 0
    try:
        import bpy  # noqa: F401
    except ImportError:
        print("blend: skipped, the bpy module is not installed (pip install bpy, or use Blender)")
        return 0
    from ..blender.build import build_take_file

    build_take_file(take_path, blend_path, smplx_path=model_path)
    bodies = f"SMPL-X meshes from {model_path}" if model else \
        "procedural mannequins (no SMPL-X model file: set --smplx or CHROMM_SMPLX_MODEL for SMPL-X meshes)"
    print(f"blend: {blend_path} with {bodies}")
    render_demo_overlay(args.out, take_path, model_path, "the ground truth drawn as figures")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


OVERLAY_SCALE = 0.5  # the demo's overlay at half the view's size: quick, and enough to judge


def render_demo_overlay(out, take_path, model_path, footage):
    """`overlay.mp4` and `preview.png`: the take's people over view 0's source clip."""
    import time

    from ..backend.progress import TerminalBar
    from ..blender.overlay import render_take_file

    video, still = os.path.join(out, "overlay.mp4"), os.path.join(out, "preview.png")
    bar = TerminalBar(stages={"render": 1.0})
    started = time.perf_counter()
    try:
        count = render_take_file(take_path, 0, video, still, smplx_path=model_path, scale=OVERLAY_SCALE,
                                 progress=lambda done, total: bar("render", done, total))
    finally:
        bar.finish()
    print(f"overlay: the reconstructed people over view 0 ({footage}), {count} frames in "
          f"{time.perf_counter() - started:.1f} s -> {video}; still -> {still}")


def _print_errors(result, single):
    def mm(x):
        return "-" if x is None or x != x else f"{1000 * x:.0f} mm"

    print("errors against the ground truth (body joints; 1-view = best single view, with the "
          "true association and scale):")
    rows = (("W-MPJPE", "w_mpjpe"), ("WA-MPJPE", "wa_mpjpe"), ("world MPJPE", "world_mpjpe"),
            ("PA-MPJPE", "pa_mpjpe"))
    for label, key in rows:
        print(f"  {label:<12} fused {mm(result.get(key)):>8}   1-view {mm(single.get(key)):>8}")
    print(f"  association accuracy {100 * result.get('assoc_accuracy', float('nan')):.2f} %, "
          f"identity switches {result.get('id_switches')}, MOTA {100 * result.get('mota', float('nan')):.1f} %, "
          f"camera rotation error {result.get('cam_rot_deg', float('nan')):.2f} deg")
