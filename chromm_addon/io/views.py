"""The views file (`chromm.views`, version 1): raw per-view network output, before fusion.

See docs/views-format.md. Everything is in the network's own world frame; detections are flat
over all views and timesteps.
"""

import dataclasses
import json
import math

import numpy as np

from ..errors import ChrommError
from .atomic import atomic_output
from .npz import ArraySpec, check_arrays, load_npz, parse_meta, plain_extra_arrays

FORMAT = "chromm.views"
VERSION = 1

F, I = "f", "iu"
SPECS = {
    "image_size": ArraySpec(("V", 2), I, np.int32),
    "cam_K": ArraySpec(("V", "T", 3, 3), F, np.float32),
    "cam_c2w": ArraySpec(("V", "T", 4, 4), F, np.float32),
    "det_view": ArraySpec(("D",), I, np.int32),
    "det_time": ArraySpec(("D",), I, np.int32),
    "det_score": ArraySpec(("D",), F, np.float32),
    "det_head_2d": ArraySpec(("D", 2), F, np.float32),
    "det_pelvis_2d": ArraySpec(("D", 2), F, np.float32),
    "det_head_cam": ArraySpec(("D", 3), F, np.float32),
    "det_rotvec": ArraySpec(("D", 53, 3), F, np.float32),
    "det_betas": ArraySpec(("D", 10), F, np.float32),
    "det_expression": ArraySpec(("D", 10), F, np.float32),
}
# Optional keys the project adds: scene points per view (network frame) with colours.
OPTIONAL = {
    "points": ArraySpec(("N", 3), F, np.float32, optional=True),
    "colors": ArraySpec(("N", 3), "u", np.uint8, optional=True),
    "point_view": ArraySpec(("N",), I, np.int32, optional=True),
    "point_time": ArraySpec(("N",), I, np.int32, optional=True),
    "point_conf": ArraySpec(("N",), F, np.float32, optional=True),
}


@dataclasses.dataclass
class Views:
    """Arrays of contract 3 plus the decoded `meta`; `extra` keeps keys this reader does not know."""

    meta: dict
    image_size: np.ndarray
    cam_K: np.ndarray
    cam_c2w: np.ndarray
    det_view: np.ndarray
    det_time: np.ndarray
    det_score: np.ndarray
    det_head_2d: np.ndarray
    det_pelvis_2d: np.ndarray
    det_head_cam: np.ndarray
    det_rotvec: np.ndarray
    det_betas: np.ndarray
    det_expression: np.ndarray
    points: np.ndarray = None
    colors: np.ndarray = None
    point_view: np.ndarray = None
    point_time: np.ndarray = None
    point_conf: np.ndarray = None
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def fps(self):
        return float(self.meta["fps"])

    @property
    def num_views(self):
        return self.cam_K.shape[0]

    @property
    def num_frames(self):
        return self.cam_K.shape[1]

    @property
    def num_detections(self):
        return self.det_view.shape[0]


def make_meta(fps, views, model="simulated", weights=None, **extra):
    return {"format": FORMAT, "version": VERSION, "fps": float(fps), "views": list(views),
            "model": model, "weights": dict(weights or {}), **extra}


def _check(path, arrays):
    meta = parse_meta(path, arrays, FORMAT, (VERSION,))
    dims, out = check_arrays(path, arrays, {**SPECS, **OPTIONAL})
    fps = meta.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not math.isfinite(fps) or fps <= 0:
        raise ChrommError(f"{path}: meta fps must be a positive number, got {fps!r}")
    views = meta.get("views")
    if not isinstance(views, list) or len(views) != dims["V"]:
        raise ChrommError(f"{path}: meta 'views' must list the {dims['V']} view names")
    if dims["T"] < 1:
        raise ChrommError(f"{path}: the views file has no timesteps")
    if np.any((out["det_view"] < 0) | (out["det_view"] >= dims["V"])):
        raise ChrommError(f"{path}: 'det_view' has indices outside [0, {dims['V'] - 1}]")
    if np.any((out["det_time"] < 0) | (out["det_time"] >= dims["T"])):
        raise ChrommError(f"{path}: 'det_time' has indices outside [0, {dims['T'] - 1}]")
    if ("points" in out) != ("colors" in out):
        raise ChrommError(f"{path}: 'points' and 'colors' must come together")
    return meta, out


def validate_views(views, path="<views>"):
    arrays = {f.name: getattr(views, f.name) for f in dataclasses.fields(views)
              if f.name not in ("meta", "extra") and getattr(views, f.name) is not None}
    arrays["meta"] = np.array(json.dumps(views.meta))
    return _check(path, arrays)


def read_views(path):
    path = str(path)
    arrays = load_npz(path, "views")
    meta, out = _check(path, arrays)
    known = set(SPECS) | set(OPTIONAL) | {"meta"}
    return Views(meta=meta, extra={k: v for k, v in arrays.items() if k not in known}, **out)


def write_views(path, views):
    meta, out = validate_views(views, str(path))
    extra = plain_extra_arrays(str(path), views.extra, set(SPECS) | set(OPTIONAL) | {"meta"})
    with atomic_output(path, suffix=".npz") as tmp:
        np.savez(tmp, meta=np.array(json.dumps(meta)), **out, **extra)
    return path
