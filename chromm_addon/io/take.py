"""The take file (`chromm.take`, version 1): the reconstruction handed to Blender.

See docs/take-format.md. Cameras, scene points and SMPL-X people in one metric, Z-up world.
"""

import dataclasses
import json
import math

import numpy as np

from ..errors import ChrommError
from .atomic import atomic_output
from .npz import ArraySpec, check_arrays, load_npz, parse_meta, plain_extra_arrays

FORMAT = "chromm.take"
VERSION = 1

F, I, U, B = "f", "iu", "u", "b"
SPECS = {
    "frame_times": ArraySpec(("T",), F, np.float64),
    "image_size": ArraySpec(("V", 2), I, np.int32),
    "cam_K": ArraySpec(("V", "T", 3, 3), F, np.float32),
    "cam_c2w": ArraySpec(("V", "T", 4, 4), F, np.float32),
    "points": ArraySpec(("N", 3), F, np.float32),
    "colors": ArraySpec(("N", 3), U, np.uint8),
    "point_frames": ArraySpec(("N",), I, np.int32, optional=True),
    "person_ids": ArraySpec(("P",), I, np.int32),
    "betas": ArraySpec(("P", "B"), F, np.float32),
    "expression": ArraySpec(("P", "T", "E"), F, np.float32),
    "global_orient": ArraySpec(("P", "T", 3), F, np.float32),
    "jaw_pose": ArraySpec(("P", "T", 3), F, np.float32),
    "body_pose": ArraySpec(("P", "T", 21, 3), F, np.float32),
    "left_hand_pose": ArraySpec(("P", "T", 15, 3), F, np.float32),
    "right_hand_pose": ArraySpec(("P", "T", 15, 3), F, np.float32),
    "transl": ArraySpec(("P", "T", 3), F, np.float32),
    "valid": ArraySpec(("P", "T"), B, np.bool_),
    "foot_contact": ArraySpec(("P", "T", 2), B, np.bool_, optional=True),
}


@dataclasses.dataclass
class Take:
    """All arrays of contract 1 plus the decoded `meta` dict (fps, views, smplx settings)."""

    meta: dict
    frame_times: np.ndarray
    image_size: np.ndarray
    cam_K: np.ndarray
    cam_c2w: np.ndarray
    points: np.ndarray
    colors: np.ndarray
    person_ids: np.ndarray
    betas: np.ndarray
    expression: np.ndarray
    global_orient: np.ndarray
    jaw_pose: np.ndarray
    body_pose: np.ndarray
    left_hand_pose: np.ndarray
    right_hand_pose: np.ndarray
    transl: np.ndarray
    valid: np.ndarray
    point_frames: np.ndarray = None
    foot_contact: np.ndarray = None  # (P, T, 2) left / right foot planted, optional
    extra: dict = dataclasses.field(default_factory=dict)  # keys this reader does not know

    @property
    def fps(self):
        return float(self.meta["fps"])

    @property
    def num_views(self):
        return self.cam_K.shape[0]

    @property
    def num_frames(self):
        return self.frame_times.shape[0]

    @property
    def num_people(self):
        return self.person_ids.shape[0]

    @property
    def view_names(self):
        return list(self.meta["views"])

    @property
    def flat_hand_mean(self):
        return bool(self.meta["smplx"]["flat_hand_mean"])


def make_meta(fps, views, num_betas, num_expression, flat_hand_mean=True, **extra):
    """The `meta` dict of a version-1 take."""
    return {"format": FORMAT, "version": VERSION, "fps": float(fps), "units": "m", "up": "+Z",
            "views": list(views),
            "smplx": {"gender": "neutral", "num_betas": int(num_betas),
                      "num_expression": int(num_expression), "flat_hand_mean": bool(flat_hand_mean)},
            **extra}


def validate_take(take, path="<take>"):
    """Check a Take in memory against contract 1; raises ChrommError naming the problem."""
    arrays = {f.name: getattr(take, f.name) for f in dataclasses.fields(take)
              if f.name in SPECS and getattr(take, f.name) is not None}
    arrays["meta"] = np.array(json.dumps(take.meta))
    return _check(path, arrays)


def _check(path, arrays):
    meta = parse_meta(path, arrays, FORMAT, (VERSION,))
    dims, out = check_arrays(path, arrays, SPECS)
    fps = meta.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not math.isfinite(fps) or fps <= 0:
        raise ChrommError(f"{path}: meta fps must be a positive number, got {fps!r}")
    for key in ("views", "smplx"):
        if key not in meta:
            raise ChrommError(f"{path}: meta lacks '{key}'")
    if not isinstance(meta["views"], list) or not all(isinstance(v, str) for v in meta["views"]):
        raise ChrommError(f"{path}: meta 'views' must be a list of view names")
    if len(meta["views"]) != dims["V"]:
        raise ChrommError(f"{path}: meta lists {len(meta['views'])} views but the cameras have V={dims['V']}")
    smplx_meta = meta["smplx"]
    if not isinstance(smplx_meta, dict):
        raise ChrommError(f"{path}: meta 'smplx' must be a JSON object")
    for key in ("num_betas", "num_expression", "flat_hand_mean"):
        if key not in smplx_meta:
            raise ChrommError(f"{path}: meta smplx lacks '{key}'")
    if not isinstance(smplx_meta["flat_hand_mean"], bool):
        raise ChrommError(f"{path}: meta smplx flat_hand_mean must be true or false, "
                          f"got {smplx_meta['flat_hand_mean']!r}")
    if smplx_meta["num_betas"] != dims["B"]:
        raise ChrommError(f"{path}: meta smplx num_betas={smplx_meta['num_betas']} but 'betas' has B={dims['B']}")
    if smplx_meta["num_expression"] != dims["E"]:
        raise ChrommError(f"{path}: meta smplx num_expression={smplx_meta['num_expression']} "
                          f"but 'expression' has E={dims['E']}")
    if dims["T"] < 1:
        raise ChrommError(f"{path}: the take has no timesteps")
    times = out["frame_times"]
    if np.any(np.diff(times) <= 0):
        raise ChrommError(f"{path}: 'frame_times' must increase strictly")
    if np.any(out["image_size"] <= 0):
        raise ChrommError(f"{path}: 'image_size' must be positive")
    _check_cameras(path, out["cam_K"], out["cam_c2w"])
    if len(np.unique(out["person_ids"])) != dims["P"]:
        raise ChrommError(f"{path}: 'person_ids' has duplicates")
    if "point_frames" in out:
        pf = out["point_frames"]
        if np.any((pf < -1) | (pf >= dims["T"])):
            raise ChrommError(f"{path}: 'point_frames' must be -1 or a timestep in [0, {dims['T'] - 1}]")
    return meta, out


def _check_cameras(path, K, c2w):
    """Pinhole intrinsics without skew and rigid camera-to-world transforms, per view and time.

    Focal lengths must be non-zero; their sign is not checked (a network with untrained weights
    can predict a negative one, and the pipeline must still run end to end).
    """
    K, c2w = K.astype(np.float64), c2w.astype(np.float64)
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    bad_k = ((fx == 0) | (fy == 0)
             | (np.abs(K[..., 0, 1]) > 1e-6 * np.abs(fx))
             | np.any(np.abs(K[..., 2, :] - (0, 0, 1)) > 1e-6, axis=-1)
             | (np.abs(K[..., 1, 0]) > 1e-6))
    if np.any(bad_k):
        v, t = np.argwhere(bad_k)[0]
        raise ChrommError(f"{path}: 'cam_K' of view {v} at timestep {t} is not a pinhole matrix "
                          "[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with non-zero fx, fy")
    rot = c2w[..., :3, :3]
    gram = np.swapaxes(rot, -1, -2) @ rot
    bad_t = (np.any(np.abs(gram - np.eye(3)) > 1e-4, axis=(-2, -1)) | (np.linalg.det(rot) <= 0)
             | np.any(np.abs(c2w[..., 3, :] - (0, 0, 0, 1)) > 1e-6, axis=-1))
    if np.any(bad_t):
        v, t = np.argwhere(bad_t)[0]
        raise ChrommError(f"{path}: 'cam_c2w' of view {v} at timestep {t} is not a rigid "
                          "transform (rotation with det +1, translation, bottom row 0 0 0 1)")


def read_take(path):
    """Read and validate a take file; unknown keys are kept in `extra`."""
    path = str(path)
    arrays = load_npz(path, "take")
    meta, out = _check(path, arrays)
    extra = {k: v for k, v in arrays.items() if k not in SPECS and k != "meta"}
    return Take(meta=meta, extra=extra, **out)


def write_take(path, take):
    """Validate and write atomically (temporary name, then rename)."""
    meta, out = validate_take(take, str(path))
    extra = plain_extra_arrays(str(path), take.extra, set(SPECS) | {"meta"})
    payload = {"meta": np.array(json.dumps(meta)), **out, **extra}
    with atomic_output(path, suffix=".npz") as tmp:
        np.savez(tmp, **payload)
    return path
