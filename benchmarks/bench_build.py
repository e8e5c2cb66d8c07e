"""Scene-builder benchmark: a large take into Blender, and the same animation keyed per key.

    .venv/bin/python benchmarks/bench_build.py [--people 4 --frames 1000 --views 4 --points 1000000]
                                               [--baseline-frames 100] [--repeats 3]

Builds a synthetic take (P people x T timesteps x V views, N points; the synthetic SMPL-X model
of tests/smplx_synth.py) with chromm_addon.blender.build.build_take and reports wall times and
peak memory (resource.getrusage). The baseline keys the same bone animation (55 quaternions and
the root location per person and timestep) with pose_bone.keyframe_insert, on all T timesteps
(minutes) or on --baseline-frames of them extrapolated linearly to T. The extrapolation is a lower
bound: keyframe_insert's cost per key grows with the curve's length (measured: 8x the timesteps
took 41x the CPU time).
Results go into docs/scene-builder.md by hand, with the machine they ran on.
"""

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_take(P, T, V, N, seed=0):
    from scipy.spatial.transform import Rotation

    from chromm_addon.io.take import Take, make_meta

    rng = np.random.default_rng(seed)
    f32 = np.float32
    K = np.tile(np.array([[1000.0, 0, 955], [0, 1000, 545], [0, 0, 1]], f32), (V, T, 1, 1))
    K[..., 0, 0] *= np.linspace(1.0, 1.2, T, dtype=f32)
    K[..., 1, 1] *= np.linspace(1.0, 1.2, T, dtype=f32)
    c2w = np.tile(np.eye(4, dtype=f32), (V, T, 1, 1))
    for v in range(V):
        yaw = np.linspace(0, 0.5, T) + v * np.pi / 2
        c2w[v, :, :3, :3] = Rotation.from_euler("zx", np.stack([yaw, np.full(T, 100.0)], 1) * [1, np.pi / 180]).as_matrix()
        c2w[v, :, :3, 3] = np.stack([6 * np.sin(yaw), -6 * np.cos(yaw), np.full(T, 1.6)], 1)
    point_frames = np.full(N, -1, np.int32)
    point_frames[N * 4 // 5:] = rng.integers(0, T, N - N * 4 // 5)
    small = lambda *s: (0.3 * rng.standard_normal(s)).astype(f32)  # noqa: E731
    return Take(
        meta=make_meta(29.97, [f"view{v}" for v in range(V)], 10, 10, flat_hand_mean=False),
        frame_times=np.arange(T) / 29.97, image_size=np.tile(np.array([1920, 1080], np.int32), (V, 1)),
        cam_K=K, cam_c2w=c2w, points=rng.uniform(-5, 5, (N, 3)).astype(f32),
        colors=rng.integers(0, 256, (N, 3)).astype(np.uint8), point_frames=point_frames,
        person_ids=np.arange(P, dtype=np.int32), betas=small(P, 10), expression=small(P, T, 10),
        global_orient=small(P, T, 3), jaw_pose=small(P, T, 3), body_pose=small(P, T, 21, 3),
        left_hand_pose=small(P, T, 15, 3), right_hand_pose=small(P, T, 15, 3),
        transl=rng.normal(size=(P, T, 3)).astype(f32), valid=np.ones((P, T), bool))


def keyframe_insert_baseline(bpy, take, frames_used, rest_joints):
    """Key the people's bones per bone and frame with keyframe_insert; returns seconds."""
    from chromm_addon.blender.collection import Build
    from chromm_addon.blender.people import build_armatures, pose_channels
    from chromm_addon.body.skeleton import JOINT_NAMES

    scene = bpy.context.scene
    build = Build("baseline", scene)
    arms = build_armatures(build, [f"baseline{p}" for p in range(take.num_people)],
                           [rest_joints] * take.num_people)
    poses = [pose_channels(take, p, rest_joints, None) for p in range(take.num_people)]
    start = time.perf_counter()
    for arm, (quat, loc) in zip(arms, poses):
        bones = [arm.pose.bones[name] for name in JOINT_NAMES]
        for t in range(frames_used):
            frame = scene.frame_start + t
            for j, bone in enumerate(bones):
                bone.rotation_quaternion = quat[t, j]
                bone.keyframe_insert("rotation_quaternion", frame=frame, group=bone.name)
            bones[0].location = loc[t]
            bones[0].keyframe_insert("location", frame=frame, group=bones[0].name)
    elapsed = time.perf_counter() - start
    build.remove()
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--baseline-frames", type=int, default=None,
                        help="timesteps keyed by the keyframe_insert baseline (default: all; fewer are "
                             "extrapolated linearly, which underestimates it: its cost per key grows)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from smplx_synth import make_synthetic_smplx

    from chromm_addon.body.model_file import load_smplx_model

    take = synthetic_take(args.people, args.frames, args.views, args.points)
    with tempfile.TemporaryDirectory() as tmp:
        model = load_smplx_model(make_synthetic_smplx(os.path.join(tmp, "SMPLX_NEUTRAL.npz")))
    # The synthetic weights take two values per joint; the real model's are all different, which
    # costs one VertexGroup.add per weight. Make them distinct, still summing to 1 per vertex.
    jitter = np.random.default_rng(1).uniform(0.9, 1.1, model.weights.shape) * (model.weights > 0)
    model.weights = model.weights * jitter / (model.weights * jitter).sum(1, keepdims=True)
    t0 = time.perf_counter()
    import bpy

    from chromm_addon.blender.build import build_take
    t_import = time.perf_counter() - t0
    mem_before = peak_mib()
    print(f"take: {args.people} people x {args.frames} timesteps x {args.views} views, "
          f"{args.points} points; bpy {bpy.app.version_string}; bpy import {t_import:.2f} s")

    times, cpu = [], []
    for _ in range(args.repeats):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        start, start_cpu = time.perf_counter(), time.process_time()
        build_take(take, name="bench", smplx_model=model)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    mem_after = peak_mib()
    # CPU time of this process next to wall time: on a busy machine the wall time includes waiting.
    print(f"build_take: wall best {min(times):.2f} s, median {np.median(times):.2f} s; "
          f"process CPU best {min(cpu):.2f} s over {len(times)} runs; "
          f"peak RSS {mem_after:.0f} MiB (before building {mem_before:.0f} MiB)")
    print(f"load average during the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.blend")
        start = time.perf_counter()
        bpy.ops.wm.save_as_mainfile(filepath=path, copy=True)
        t_save = time.perf_counter() - start
        print(f"save .blend: {t_save:.2f} s, {os.path.getsize(path) / 2**20:.0f} MiB")

        # What `python -m chromm_addon build` does after bpy is imported: read and validate the
        # take, load the model, factory-empty scene, build, save atomically.
        from chromm_addon.blender.build import build_take_file
        from chromm_addon.io.take import write_take

        take_path = write_take(os.path.join(tmp, "bench.npz"), take)
        model_path = make_synthetic_smplx(os.path.join(tmp, "SMPLX_NEUTRAL.npz"))
        start = time.perf_counter()
        build_take_file(take_path, os.path.join(tmp, "out.blend"), smplx_path=model_path)
        print(f"build_take_file (read take + model, build, save): {time.perf_counter() - start:.2f} s")

    # The people's bone animation alone, bulk path vs keyframe_insert.
    from chromm_addon.blender.animation import animate, vector_channels
    from chromm_addon.blender.collection import Build
    from chromm_addon.blender.people import build_armatures, pose_channels
    from chromm_addon.body.skeleton import JOINT_NAMES

    bpy.ops.wm.read_factory_settings(use_empty=True)
    rest = model.rest_joints(np.zeros(10))
    build = Build("bulk", bpy.context.scene)
    arms = build_armatures(build, [f"bulk{p}" for p in range(args.people)], [rest] * args.people)
    frames = bpy.context.scene.frame_start + np.arange(args.frames)
    start, start_cpu = time.perf_counter(), time.process_time()
    for p, arm in enumerate(arms):
        quat, loc = pose_channels(take, p, rest, None)
        channels = []
        for j, name in enumerate(JOINT_NAMES):
            channels += vector_channels(f'pose.bones["{name}"].rotation_quaternion', quat[:, j], name)
        channels += vector_channels('pose.bones["pelvis"].location', loc, "pelvis")
        animate(arm, f"bulk{p}", frames, channels)
    t_bulk, c_bulk = time.perf_counter() - start, time.process_time() - start_cpu
    build.remove()
    keys = args.people * args.frames * (55 * 4 + 3)
    print(f"bone keys ({keys} values): bulk foreach_set wall {t_bulk:.3f} s, CPU {c_bulk:.3f} s")

    used = min(args.baseline_frames or args.frames, args.frames)
    start_cpu = time.process_time()
    t_base = keyframe_insert_baseline(bpy, take, used, rest)
    c_base = time.process_time() - start_cpu  # includes building the baseline armatures (small)
    scale = args.frames / used
    if used == args.frames:
        print(f"keyframe_insert baseline: wall {t_base:.2f} s, CPU {c_base:.2f} s for all {used} timesteps")
    else:
        print(f"keyframe_insert baseline: wall {t_base:.2f} s, CPU {c_base:.2f} s for {used} timesteps -> "
              f"wall {t_base * scale:.1f} s, CPU {c_base * scale:.1f} s for {args.frames} "
              "(linear extrapolation, a lower bound)")
    print(f"speed-up on the bone animation: wall {t_base * scale / t_bulk:.0f}x, CPU {c_base * scale / c_bulk:.0f}x; "
          f"whole build_take vs keyframe_insert bones alone: wall {t_base * scale / min(times):.0f}x, "
          f"CPU {c_base * scale / min(cpu):.0f}x")
    print(f"peak RSS at the end: {peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
