"""Clip synchronisation, run by hand: audio offsets and speed, motion offsets and what they are
worth to the fusion. Figures go to docs/sync.md with the machine they ran on.

    .venv/bin/python benchmarks/bench_sync.py audio  [--trials 6 --length 30]
    .venv/bin/python benchmarks/bench_sync.py speed  [--clips 4 --minutes 5]
    .venv/bin/python benchmarks/bench_sync.py motion [--frames 300 --trials 3]

audio: clips recorded from a sound scene known in continuous time (a clap, speech-like bursts,
music, microphone noise) by cameras starting at random fractional times within 2 s, at 44.1 or
48 kHz, with different gains and lengths, written as AAC in .m4a by PyAV; error of each offset.
speed: time of `sync_audio` (decode + envelopes + correlation) for N clips of M minutes.
motion: simulated views (evaluation/simulate.py, "realistic" noise) of cameras starting 0 to 2 s
apart at quarter-frame steps; offset errors in frames, then association accuracy, identity
switches and W-MPJPE of `fuse` on the desynchronised views (sync on), against the same take
simulated in sync, and without sync; then the failure modes (everyone standing still, one person).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def _clips(folder, scene, starts, lengths, rates, gains, seed=0):
    from backend_synth import write_av_clip

    return [write_av_clip(os.path.join(folder, f"cam{j}.m4a"), None,
                          audio=scene.recording(s, n, r, g, seed=seed * 10 + j), audio_rate=r)
            for j, (s, n, r, g) in enumerate(zip(starts, lengths, rates, gains))]


def bench_audio(args):
    from audio_synth import SoundScene

    from chromm_addon.backend.audio_sync import sync_audio

    rng = np.random.default_rng(0)
    errors, confs = [], []
    for trial in range(args.trials):
        scene = SoundScene(args.length + 3, seed=trial, clap_at=args.length * rng.uniform(0.3, 0.7),
                           clap=trial % 3 != 2)  # every third trial: speech and music only
        starts = rng.uniform(0, 2, 4)
        lengths = args.length - rng.uniform(0, 5, 4)
        rates = rng.choice([44100, 48000], 4)
        gains = rng.uniform(0.2, 2, 4)
        with tempfile.TemporaryDirectory() as tmp:
            result = sync_audio(_clips(tmp, scene, starts, lengths, rates, gains, trial))
        truth = starts.max() - starts
        err = np.abs(np.asarray(result.offsets) - truth) * 1e3
        errors.append(err)
        confs.append(result.confidence)
        print(f"trial {trial} ({'clap+' if trial % 3 != 2 else ''}speech+music): errors "
              f"{', '.join(f'{e:.3f}' for e in err)} ms, confidence {', '.join(f'{c:.2f}' for c in result.confidence)}")
    errors = np.concatenate(errors)
    print(f"| offsets | max error | median error | lowest confidence |\n|---|---|---|---|\n"
          f"| {len(errors)} ({args.trials} takes of 4 clips, {args.length:g} s) | {errors.max():.3f} ms | "
          f"{np.median(errors):.3f} ms | {np.min(confs):.2f} |")


def bench_speed(args):
    from audio_synth import SoundScene

    from chromm_addon.backend.audio_sync import sync_audio

    length = args.minutes * 60
    scene = SoundScene(length + 3, seed=1, clap_at=length / 2)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        starts = np.linspace(0, 1.5, args.clips)
        paths = _clips(tmp, scene, starts, [length] * args.clips, [48000, 44100] * args.clips,
                       [1.0] * args.clips)
        print(f"wrote {args.clips} clips of {args.minutes:g} min in {time.perf_counter() - t0:.0f} s")
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = sync_audio(paths)
            times.append(time.perf_counter() - t0)
    err = np.abs(np.asarray(result.offsets) - (starts.max() - starts)) * 1e3
    print(f"sync_audio on {args.clips} clips of {args.minutes:g} min: best {min(times):.2f} s, "
          f"median {np.median(times):.2f} s; max error {err.max():.3f} ms")


def _desynced(shifts, frames, seed, walk_speed=(1.0, 1.4), people=4, fine=4):
    from chromm_addon.evaluation.simulate import desync_views, simulate_views
    from chromm_addon.evaluation.synthetic import make_scene

    scene = make_scene(num_people=people, num_views=len(shifts), seed=seed, fps=30.0 * fine,
                       num_frames=(frames + int(np.ceil(max(shifts))) + 2) * fine, walk_speed=walk_speed)
    return scene, desync_views(simulate_views(scene, "realistic", seed=seed), fine, shifts, frames)


def _evaluate(take, scene, first, views, fine=4):
    from chromm_addon.evaluation.evaluate import evaluate_take

    frames = (np.arange(take.num_frames) + first) * fine
    return evaluate_take(take, scene.at_frames(frames, fps=30.0), views=views)


def bench_motion(args):
    from chromm_addon.fusion.motion_sync import resample_views
    from chromm_addon.fusion.pipeline import FuseOptions, fuse_views, motion_offsets

    rng = np.random.default_rng(1)
    rows, all_err = [], []
    for trial in range(args.trials):
        shifts = np.concatenate([[0.0], np.round(rng.uniform(0, 60, 3) * 4) / 4])  # 0-2 s, quarter frames
        scene, views = _desynced(list(shifts), args.frames, seed=trial + 1)
        t0 = time.perf_counter()
        found = motion_offsets(views)
        t_est = time.perf_counter() - t0
        truth = shifts[found.reference] - shifts
        err = np.abs(found.offsets - truth)
        all_err.append(np.delete(err, found.reference))
        t0 = time.perf_counter()
        synced = fuse_views(views)
        t_fuse = time.perf_counter() - t0
        sync = synced.meta["sync"]
        ref = sync["reference"]
        # what fuse does inside, done here so the resampled views (with their ground truth) can be
        # handed to the evaluation of the association
        resampled, k0 = resample_views(views, sync["offsets_frames"], gate=0.35 * float(views.extra["gt_scale"]))
        take = fuse_views(resampled, options=FuseOptions(sync="none"))
        r_sync = _evaluate(take, scene, k0 + shifts[ref], resampled)
        _, in_sync = _desynced([shifts[ref]] * 4, args.frames, seed=trial + 1)
        in_sync, _ = resample_views(in_sync, [float(k0)] * 4)  # the same frames (a whole-frame slice)
        r_base = _evaluate(fuse_views(in_sync, options=FuseOptions(sync="none")), scene, k0 + shifts[ref], in_sync)
        r_none = _evaluate(fuse_views(views, options=FuseOptions(sync="none")), scene, shifts[0], views)
        print(f"trial {trial}: shifts {shifts} frames; errors {np.round(err, 3)} frames, confidence "
              f"{np.round(found.confidence, 2)}; estimate {t_est:.1f} s, fuse with sync {t_fuse:.1f} s")
        for name, r in (("in sync (simulated)", r_base), ("offset, sync on", r_sync), ("offset, sync off", r_none)):
            rows.append((trial, name, r))
    err = np.concatenate(all_err)
    print(f"\noffset errors over {len(err)} views: max {err.max():.3f}, median {np.median(err):.3f} frames "
          f"({(err <= 0.25).mean() * 100:.0f} % within 1/4 frame)\n")
    print("| take | case | association accuracy | ID switches | W-MPJPE (mm) |\n|---|---|---|---|---|")
    for trial, name, r in rows:
        print(f"| {trial} | {name} | {r['assoc_accuracy']:.3f} | {r['id_switches']} | {r['w_mpjpe'] * 1000:.0f} |")
    print("\nfailure modes:")
    for name, kwargs in (("everyone standing still", dict(walk_speed=(0.0, 0.0))),
                         ("one person only", dict(people=1))):
        shifts = [0.0, 12.5, 30.25, 45.0]
        _, views = _desynced(shifts, args.frames, seed=7, **kwargs)
        found = motion_offsets(views)
        truth = shifts[found.reference] - np.asarray(shifts)
        print(f"- {name}: errors {np.round(np.abs(found.offsets - truth), 2)} frames, confidence "
              f"{np.round(found.confidence, 2)}; notes: {found.notes}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("audio", "speed", "motion"))
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--length", type=float, default=30.0)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    if args.trials is None:
        args.trials = 6 if args.what == "audio" else 3
    print(f"machine: {os.cpu_count()} CPUs")
    {"audio": bench_audio, "speed": bench_speed, "motion": bench_motion}[args.what](args)


if __name__ == "__main__":
    main()
