"""`sync CLIP... [--method auto|audio|motion] [--json]`: each clip's offset and its confidence.

The offsets are what `reconstruct --offsets` takes: the time in each clip that lines up with the
common zero (the start of the clip that starts last), in seconds; the frames are at each clip's
own rate. See docs/sync.md.
"""

import argparse
import json


def add_arguments(parser):
    parser.add_argument("clips", nargs="+", metavar="CLIP", help="video files (or folders of images, motion only)")
    parser.add_argument("--method", choices=("auto", "audio", "motion"), default="auto",
                        help="auto (default): audio when every clip has confident audio, motion otherwise; "
                             "audio: from the sound; motion: from the people's movement (runs the network)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--weights", help="network weights folder, for motion (default: the installed weights)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda, for motion (default: auto)")
    parser.add_argument("--fps", type=float, help="motion: rate the clips are sampled at (default: the slowest clip's)")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tiny-network", action="store_true", help=argparse.SUPPRESS)


def sync_clips(args):
    """{'method', 'clips': [{path, offset_s, offset_frames, confidence}], 'notes'}."""
    from ..backend.audio_sync import sync_audio, usable
    from ..backend.timeline import open_clips

    clips, _ = open_clips(args.clips)
    notes = [n for c in clips for n in getattr(c, "notes", ())]
    offsets = confidence = None
    method = args.method
    if method in ("auto", "audio"):
        videos = [c.kind == "video" for c in clips]
        result = sync_audio([c.path for c in clips], sources=[c.source for c in clips]) if all(videos) else None
        if result is not None:
            notes += result.notes
            offsets, confidence = result.offsets, result.confidence
        else:
            notes.append("folders of images have no audio")
        if method == "auto":
            if result is not None and usable(result):
                method = "audio"
            else:
                notes.append("audio sync not usable; synchronising by motion instead")
                method = "motion"
    if method == "motion":
        offsets, confidence, more = _motion(args, clips)
        notes += more
    rows = []
    for clip, offset, conf in zip(clips, offsets, confidence):
        rows.append({"path": clip.path, "name": clip.name, "fps": clip.fps,
                     "offset_s": offset, "offset_frames": None if offset is None else offset * clip.fps,
                     "confidence": conf})
    return {"method": method, "clips": rows, "notes": notes}


def _motion(args, clips):
    from ..backend.pipeline import ReconstructOptions, reconstruct_views
    from ..fusion.pipeline import motion_offsets

    options = ReconstructOptions(clips=[c.path for c in clips], fps=args.fps, device=args.device,
                                 weights=args.weights, network="tiny" if args.tiny_network else "auto",
                                 seed=args.seed)
    views, _ = reconstruct_views(options)
    found = motion_offsets(views)
    seconds = [o + d / views.fps for o, d in zip(views.meta["offsets_s"], found.offsets)]
    low = min(seconds)
    return [s - low for s in seconds], [float(c) for c in found.confidence], list(found.notes)


def run(args):
    report = sync_clips(args)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    width = max(len(r["name"]) for r in report["clips"])
    print(f"sync by {report['method']}:")
    for r in report["clips"]:
        if r["offset_s"] is None:
            print(f"  {r['name']:<{width}}  no offset")
            continue
        conf = "-" if r["confidence"] is None else f"{r['confidence']:.2f}"
        print(f"  {r['name']:<{width}}  {r['offset_s']:9.4f} s  ({r['offset_frames']:8.2f} frames at "
              f"{r['fps']:g} fps)  confidence {conf}")
    for note in report["notes"]:
        print(f"note: {note}")
    return 0
