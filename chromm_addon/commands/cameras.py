"""`cameras FILE... [-o cameras.json]`: read calibration files (ours, OpenCV FileStorage, EasyMocap),
say what they hold, and write them as one camera document of our format (docs/cameras.md), e.g.
for the add-on, which reads only that format.
"""

import json


def add_arguments(parser):
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="our JSON, OpenCV calibration files (one camera each, in clip order) or EasyMocap "
                             "intri.yml / extri.yml")
    parser.add_argument("-o", "--output", help="write the cameras as one document of our format (.json)")


def run(args):
    from ..errors import ChrommError
    from ..io.atomic import atomic_output
    from ..io.cameras import read_camera_files

    doc = read_camera_files(args.files)
    for i, cam in enumerate(doc["cameras"]):
        parts = [f"camera {i}" + (f" '{cam['clip']}'" if cam.get("clip") is not None else "")]
        if cam.get("fx") is not None:
            size = cam.get("image_size")
            parts.append(f"fx {cam['fx']:.2f} fy {cam['fy']:.2f} cx {cam['cx']:.2f} cy {cam['cy']:.2f}"
                         + (f" at {size[0]}x{size[1]}" if size else " at the clip's size"))
        if cam.get("distortion"):
            parts.append(f"{cam['distortion']['model']} distortion")
        if cam.get("camera_to_world") is not None or cam.get("world_to_camera") is not None:
            parts.append("pose")
        print(", ".join(parts))
    if args.output:
        if not args.output.endswith(".json"):
            raise ChrommError(f"{args.output}: the camera document must end in .json")
        with atomic_output(args.output) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({k: v for k, v in doc.items() if k != "source"}, fh, indent=1)
        print(f"wrote {args.output}")
    return 0
