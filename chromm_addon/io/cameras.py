"""Known cameras: per clip, optional intrinsics, lens distortion and pose (docs/cameras.md).

Readers turn a calibration file into one document of our own format (`chromm.cameras`, version
1; a plain dict, what the HTTP service takes inline), and `match_cameras` checks it against the
clips: one `KnownCamera` per clip (None where nothing is known), scaled to the clip's frame
size, plus notes saying what was assumed (scaled calibration, millimetres).

Formats read:
- ours (JSON, `"format": "chromm.cameras"`);
- OpenCV FileStorage YAML/XML/JSON of one camera (`camera_matrix`, `distortion_coefficients`,
  `image_width`, `image_height`, as OpenCV's calibration sample writes; optional
  `distortion_model`, extrinsics `rvec`/`R` + `tvec`/`T` world-to-camera, or `camera_to_world`);
- EasyMocap `intri.yml` (`names`, `K_<name>`, `dist_<name>`) with `extri.yml` beside it
  (`Rot_<name>` or `R_<name>` (Rodrigues), `T_<name>`, world-to-camera), also FileStorage.
cv2 (pinned) reads the FileStorage files; it is imported only when one is read.
"""

import dataclasses
import json
import os

import numpy as np

from ..errors import ChrommError

FORMAT = "chromm.cameras"
VERSION = 1

PINHOLE_KEYS = ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")     # OpenCV's order
FISHEYE_KEYS = ("k1", "k2", "k3", "k4")
MODEL_NAMES = {
    "pinhole": "pinhole", "opencv": "pinhole", "plumb_bob": "pinhole", "radtan": "pinhole",
    "rational_polynomial": "pinhole", "brown": "pinhole", "brown_conrady": "pinhole",
    "fisheye": "fisheye", "opencv_fisheye": "fisheye", "equidistant": "fisheye", "kannala_brandt": "fisheye",
}
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
# Camera spacings above this many "metres" are taken for millimetres (a room-sized rig is
# metres apart; the same rig in millimetres is thousands apart).
IMPLAUSIBLE_SPACING = 100.0
ROTATION_TOLERANCE = 1e-3


@dataclasses.dataclass
class KnownCamera:
    """What is known of one clip's camera, at that clip's frame size (OpenCV conventions)."""

    clip: str
    K: np.ndarray = None            # (3, 3) pixels of the clip's frames, pixel centres at integers
    model: str = None               # "pinhole" | "fisheye" | None (no distortion)
    dist: np.ndarray = None         # OpenCV order: pinhole k1 k2 p1 p2 k3 k4 k5 k6; fisheye k1..k4
    c2w: np.ndarray = None          # (4, 4) camera-to-world, OpenCV axes, metres

    @property
    def distorted(self):
        return self.model is not None and self.dist is not None and bool(np.any(self.dist != 0))


# ------------------------------------------------------------------------------------ reading

def read_camera_files(paths):
    """One or more calibration files -> one document of our format (cameras concatenated)."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    cameras, units = [], None
    for path in paths:
        doc = read_camera_file(path)
        if len(paths) > 1 and doc.get("units") not in (None, "m"):
            for cam in doc["cameras"]:
                _scale_pose_entry(cam, UNITS[doc["units"]], path)
        elif len(paths) == 1:
            units = doc.get("units")
        cameras.extend(doc["cameras"])
    out = {"format": FORMAT, "version": VERSION, "cameras": cameras, "source": ", ".join(paths)}
    if units is not None:
        out["units"] = units
    return out


def read_camera_file(path):
    """A calibration file (ours, OpenCV FileStorage, EasyMocap) -> a document of our format."""
    if not os.path.isfile(path):
        raise ChrommError(f"{path}: camera file not found")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise ChrommError(f"{path}: not readable JSON ({exc})") from None
        if isinstance(data, dict) and data.get("format") == FORMAT:
            check_document(data, path)
            return dict(data, source=path)
        if isinstance(data, dict) and "cameras" in data:
            raise ChrommError(f"{path}: field 'format' must be {FORMAT!r} for our camera format")
    elif ext not in (".yml", ".yaml", ".xml"):
        raise ChrommError(f"{path}: unknown camera file type {ext or '(none)'}; expected .json, .yml, .yaml or .xml")
    fs = _open_filestorage(path)
    try:
        if _node(fs, "names") is not None or os.path.basename(path).lower().startswith(("intri.", "extri.")):
            return _read_easymocap(path)
        return {"format": FORMAT, "version": VERSION, "cameras": [_read_opencv_camera(fs, path)], "source": path}
    finally:
        fs.release()


def _open_filestorage(path):
    try:
        import cv2
    except ImportError:
        raise ChrommError(f"{path}: reading OpenCV / EasyMocap calibration files needs OpenCV (the backend's "
                          "environment); convert it there: python -m chromm_addon cameras FILE -o cameras.json") from None

    try:
        fs = cv2.FileStorage(path, cv2.FILE_STORAGE_READ)
    except cv2.error as exc:
        raise ChrommError(f"{path}: not an OpenCV FileStorage file ({str(exc).strip().splitlines()[-1]})") from None
    if not fs.isOpened():
        raise ChrommError(f"{path}: not an OpenCV FileStorage file")
    return fs


def _node(fs, name):
    node = fs.getNode(name)
    return None if node.empty() else node


def _matrix(fs, names, path):
    for name in names:
        node = _node(fs, name)
        if node is None:
            continue
        if node.isSeq():
            value = np.array([node.at(i).real() for i in range(node.size())], dtype=np.float64)
        else:
            value = node.mat()
            if value is None:
                value = np.array([node.real()])
        return name, np.asarray(value, dtype=np.float64)
    return None, None


def _number(fs, names):
    for name in names:
        node = _node(fs, name)
        if node is not None and (node.isReal() or node.isInt()):
            return float(node.real())
    return None


def _string(fs, name):
    node = _node(fs, name)
    return node.string() if node is not None and node.isString() else None


def _read_opencv_camera(fs, path):
    name, K = _matrix(fs, ("camera_matrix", "cameraMatrix", "K", "intrinsics"), path)
    if K is None:
        raise ChrommError(f"{path}: no 'camera_matrix' (or cameraMatrix, K) in this OpenCV file")
    entry = _intrinsics_entry(K.reshape(-1), name, path)
    width, height = _number(fs, ("image_width", "width")), _number(fs, ("image_height", "height"))
    if width is None or height is None:
        _, size = _matrix(fs, ("image_size", "imageSize"), path)
        if size is not None and size.size == 2:
            width, height = size.reshape(-1)
    if width is None or height is None:
        raise ChrommError(f"{path}: field 'image_width' / 'image_height' is missing: the calibration's image "
                          "size must be stated")
    entry["image_size"] = [int(width), int(height)]
    dname, dist = _matrix(fs, ("distortion_coefficients", "dist_coeffs", "distCoeffs", "D"), path)
    if dist is not None:
        entry["distortion"] = distortion_entry(dist.reshape(-1), _string(fs, "distortion_model"), f"{path}: field "
                                               f"'{dname}'")
    pose = _opencv_pose(fs, path)
    if pose is not None:
        entry.update(pose)
    return entry


def _opencv_pose(fs, path):
    _, c2w = _matrix(fs, ("camera_to_world", "c2w"), path)
    if c2w is not None:
        return {"camera_to_world": c2w.reshape(4, 4).tolist()}
    rname, rot = _matrix(fs, ("R", "rvec", "rotation"), path)
    tname, t = _matrix(fs, ("T", "tvec", "translation"), path)
    if rot is None and t is None:
        return None
    if rot is None or t is None:
        raise ChrommError(f"{path}: field '{rname or tname}' needs its partner ('R'/'rvec' and 'T'/'tvec')")
    return {"world_to_camera": _w2c(rot, t, f"{path}: field '{rname}'").tolist()}


def _w2c(rot, t, where):
    import cv2

    rot = np.asarray(rot, dtype=np.float64)
    if rot.size == 3:
        rot = cv2.Rodrigues(rot.reshape(3, 1))[0]
    elif rot.size != 9:
        raise ChrommError(f"{where}: a rotation is 3 numbers (Rodrigues) or a 3x3 matrix, got {rot.size} numbers")
    m = np.eye(4)
    m[:3, :3] = rot.reshape(3, 3)
    m[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return m


def _read_easymocap(path):
    folder = os.path.dirname(os.path.abspath(path))
    intri, extri = os.path.join(folder, "intri.yml"), os.path.join(folder, "extri.yml")
    if not os.path.isfile(intri):
        raise ChrommError(f"{intri}: EasyMocap intrinsics file not found beside {os.path.basename(path)}")
    fs = _open_filestorage(intri)
    try:
        names_node = _node(fs, "names")
        if names_node is None:
            raise ChrommError(f"{intri}: field 'names' is missing (EasyMocap lists its cameras there)")
        names = [names_node.at(i).string() for i in range(names_node.size())]
        cameras = []
        for name in names:
            kname, K = _matrix(fs, (f"K_{name}",), intri)
            if K is None:
                raise ChrommError(f"{intri}: field 'K_{name}' is missing")
            entry = dict(clip=name, **_intrinsics_entry(K.reshape(-1), f"K_{name}", intri))
            _, size = _matrix(fs, (f"size_{name}",), intri)   # not always written: then from H_/W_
            width = _number(fs, (f"W_{name}",)) if size is None else size.reshape(-1)[0]
            height = _number(fs, (f"H_{name}",)) if size is None else size.reshape(-1)[1]
            if width is not None and height is not None:
                entry["image_size"] = [int(width), int(height)]
            else:       # EasyMocap does not always write the size: its cameras are the videos'
                entry["image_size_of_clip"] = True
            _, dist = _matrix(fs, (f"dist_{name}", f"D_{name}"), intri)
            if dist is not None:
                # EasyMocap's dist is OpenCV's pinhole model (k1 k2 p1 p2 k3) by its convention.
                entry["distortion"] = distortion_entry(dist.reshape(-1), "pinhole", f"{intri}: field 'dist_{name}'")
            cameras.append(entry)
    finally:
        fs.release()
    if os.path.isfile(extri):
        fs = _open_filestorage(extri)
        try:
            for entry in cameras:
                name = entry["clip"]
                rname, rot = _matrix(fs, (f"Rot_{name}", f"R_{name}"), extri)
                _, t = _matrix(fs, (f"T_{name}",), extri)
                if rot is None or t is None:
                    continue
                entry["world_to_camera"] = _w2c(rot, t, f"{extri}: field '{rname}'").tolist()
        finally:
            fs.release()
    return {"format": FORMAT, "version": VERSION, "cameras": cameras, "source": path}


def _intrinsics_entry(k, field, path):
    if k.size != 9:
        raise ChrommError(f"{path}: field '{field}' must be a 3x3 camera matrix, got {k.size} numbers")
    K = k.reshape(3, 3)
    return {"fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])}


def distortion_entry(coeffs, model, where):
    """OpenCV coefficients (+ the model's name if the file gives one) -> our distortion dict.

    4 coefficients are ambiguous (pinhole k1 k2 p1 p2, or fisheye k1..k4): the model must be
    named. 5 or 8 can only be OpenCV's pinhole model; 12 and 14 (thin prism, tilt) only with
    those extra terms zero.
    """
    coeffs = [float(c) for c in np.asarray(coeffs, dtype=np.float64).reshape(-1)]
    if model is not None:
        kind = MODEL_NAMES.get(str(model).strip().lower())
        if kind is None:
            raise ChrommError(f"{where}: unknown distortion model {model!r}; known: {', '.join(sorted(MODEL_NAMES))}")
    elif len(coeffs) == 4:
        raise ChrommError(f"{where}: 4 distortion coefficients without a named model (pinhole k1 k2 p1 p2, or "
                          "fisheye k1..k4?); add distortion_model: pinhole or fisheye")
    elif len(coeffs) in (5, 8, 12, 14):
        kind = "pinhole"
    else:
        raise ChrommError(f"{where}: {len(coeffs)} distortion coefficients; OpenCV's pinhole model has 4, 5, 8, "
                          "12 or 14 and its fisheye model 4")
    keys = FISHEYE_KEYS if kind == "fisheye" else PINHOLE_KEYS
    if kind == "fisheye" and len(coeffs) != 4:
        raise ChrommError(f"{where}: the fisheye model has 4 coefficients (k1..k4), got {len(coeffs)}")
    if len(coeffs) > len(keys):
        if any(c != 0 for c in coeffs[len(keys):]):
            raise ChrommError(f"{where}: thin-prism / tilt distortion terms (coefficients 9 and on) are not supported")
        coeffs = coeffs[:len(keys)]
    return {"model": kind, **dict(zip(keys, coeffs))}


# ---------------------------------------------------------------------------- our document

def check_document(doc, where="cameras"):
    """Structure of a document of our format; values are checked against the clips later."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ChrommError(f"{where}: not a camera document (field 'format' must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise ChrommError(f"{where}: field 'version' is {doc.get('version')!r}; this version reads {VERSION}")
    if doc.get("units") is not None and doc["units"] not in UNITS:
        raise ChrommError(f"{where}: field 'units' is {doc['units']!r}; expected one of {', '.join(UNITS)}")
    cams = doc.get("cameras")
    if not isinstance(cams, list) or not all(isinstance(c, dict) for c in cams):
        raise ChrommError(f"{where}: field 'cameras' must be a list of objects, one per clip")
    named = [c.get("clip") is not None for c in cams]
    if any(named) and not all(named):
        raise ChrommError(f"{where}: give 'clip' for every camera or for none (then they are in clip order)")
    return doc


def _scale_pose_entry(cam, factor, where):
    for key in ("camera_to_world", "world_to_camera"):
        if cam.get(key) is not None:
            m = np.asarray(cam[key], dtype=np.float64).reshape(4, 4).copy()
            m[:3, 3] *= factor
            cam[key] = m.tolist()


def match_cameras(doc, clip_names, clip_sizes, where=None):
    """The document against the clips: ([KnownCamera or None per clip], [notes]).

    clip_sizes: (width, height) of each clip's frames. Every clip needs an entry (by its name
    in 'clip', or in order when no entry names a clip); an entry may be empty ({}).
    """
    where = where or doc.get("source") or "cameras"
    check_document(doc, where)
    notes = []
    entries = _entries_per_clip(doc, clip_names, where)
    out = [_known_camera(e, name, size, where, notes) for e, name, size in zip(entries, clip_names, clip_sizes)]
    _check_units(out, doc.get("units"), where, notes)
    return [c if (c.K is not None or c.c2w is not None) else None for c in out], notes


def _entries_per_clip(doc, clip_names, where, covered=()):
    """The document's entry of each clip (by name, or in order); a clip without one is an error
    unless it is in `covered` (then its entry is None)."""
    cams = doc["cameras"]
    if cams and cams[0].get("clip") is not None:
        by_name = {str(c["clip"]): c for c in cams}
        unknown = sorted(set(by_name) - set(clip_names))
        if unknown:
            raise ChrommError(f"{where}: camera '{unknown[0]}' names no clip (clips: {', '.join(clip_names)})")
        entries = [by_name.get(name) for name in clip_names]
    else:
        if len(cams) > len(clip_names):
            raise ChrommError(f"{where}: {len(cams)} cameras for {len(clip_names)} clips")
        entries = list(cams) + [None] * (len(clip_names) - len(cams))
    for name, entry in zip(clip_names, entries):
        if entry is None and name not in covered:
            raise ChrommError(f"{where}: clip '{name}': no camera given ({len(cams)} cameras for "
                              f"{len(clip_names)} clips); add an entry for it ({{}} when nothing is known)")
    return entries


def _known_camera(entry, clip, size, where, notes):
    cam = KnownCamera(clip)
    field = f"{where}: clip '{clip}'"
    have = [k for k in ("fx", "fy", "cx", "cy") if entry.get(k) is not None]
    if have and len(have) < 4:
        missing = sorted({"fx", "fy", "cx", "cy"} - set(have))
        raise ChrommError(f"{field}: field '{missing[0]}' is missing (intrinsics need fx, fy, cx, cy)")
    if have:
        K = np.array([[entry["fx"], 0.0, entry["cx"]], [0.0, entry["fy"], entry["cy"]], [0.0, 0.0, 1.0]], dtype=np.float64)
        if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ChrommError(f"{field}: fields 'fx', 'fy' must be positive focal lengths in pixels")
        calib = entry.get("image_size")
        if calib is None and entry.get("image_size_of_clip"):
            calib = size
            notes.append(f"{field}: the file states no image size; intrinsics taken at the clip's {size[0]}x{size[1]}")
        if calib is None:
            raise ChrommError(f"{field}: field 'image_size' is missing: intrinsics are in pixels of a stated image size")
        cw, ch = (float(v) for v in calib)
        w, h = size
        if (cw, ch) != (w, h):
            if abs(cw / ch - w / h) > 0.01 * (w / h):
                raise ChrommError(f"{field}: field 'image_size' {int(cw)}x{int(ch)} has another aspect ratio than "
                                  f"the clip ({w}x{h}); a cropped calibration cannot be scaled")
            sx, sy = w / cw, h / ch
            K[0] *= sx
            K[1] *= sy
            K[0, 2] += 0.5 * sx - 0.5      # pixel edges scale, pixel centres do not
            K[1, 2] += 0.5 * sy - 0.5
            notes.append(f"{field}: calibration for {int(cw)}x{int(ch)}, the clip is {w}x{h}: intrinsics scaled by "
                         f"{sx:.4g}")
        cam.K = K
    dist = entry.get("distortion")
    if dist is not None:
        if cam.K is None:
            raise ChrommError(f"{field}: field 'distortion' needs the intrinsics (fx, fy, cx, cy) too")
        model = dist.get("model") if isinstance(dist, dict) else None
        kind = MODEL_NAMES.get(str(model).lower()) if model is not None else None
        if kind is None:
            raise ChrommError(f"{field}: field 'distortion.model' is {model!r}; name it: pinhole (OpenCV k1 k2 p1 p2 "
                              "k3 k4 k5 k6) or fisheye (k1 k2 k3 k4)")
        keys = FISHEYE_KEYS if kind == "fisheye" else PINHOLE_KEYS
        extra = sorted(set(dist) - set(keys) - {"model"})
        if extra:
            raise ChrommError(f"{field}: field 'distortion.{extra[0]}' is not a coefficient of the {kind} model "
                              f"({', '.join(keys)})")
        cam.model, cam.dist = kind, np.array([float(dist.get(k, 0.0)) for k in keys])
    c2w = _pose(entry, field)
    if c2w is not None:
        cam.c2w = c2w
    return cam


def _pose(entry, field):
    for key, invert in (("camera_to_world", False), ("world_to_camera", True)):
        if entry.get(key) is None:
            continue
        m = np.asarray(entry[key], dtype=np.float64)
        if m.shape == (3, 4):
            m = np.vstack([m, [0, 0, 0, 1]])
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise ChrommError(f"{field}: field '{key}' must be a 4x4 (or 3x4) matrix of numbers")
        rot = m[:3, :3]
        err = np.abs(rot.T @ rot - np.eye(3)).max()
        det = np.linalg.det(rot)
        if err > ROTATION_TOLERANCE or det < 0:
            what = "a reflection (determinant -1)" if det < 0 else f"not orthonormal (R^T R - I up to {err:.3g})"
            raise ChrommError(f"{field}: field '{key}' rotation is not a rotation: {what}")
        if invert:
            inv = np.eye(4)
            inv[:3, :3] = rot.T
            inv[:3, 3] = -rot.T @ m[:3, 3]
            m = inv
        return m
    return None


def _check_units(cams, units, where, notes):
    posed = [c for c in cams if c.c2w is not None]
    if not posed:
        return
    factor = UNITS[units] if units else 1.0
    centres = np.array([c.c2w[:3, 3] for c in posed])
    if len(centres) > 1:
        spacing = float(np.median([np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1:]]))
    else:
        spacing = float(np.linalg.norm(centres[0]))
    if units is None and spacing > IMPLAUSIBLE_SPACING:
        factor = 0.001
        notes.append(f"{where}: camera spacing {spacing:.4g} is implausible in metres: translations taken as "
                     "millimetres (divided by 1000); set \"units\" to say otherwise")
    if factor != 1.0:
        for c in posed:
            c.c2w = c.c2w.copy()
            c.c2w[:3, 3] *= factor


def document_from_cameras(cameras, sizes, units="m"):
    """KnownCamera list (at clip sizes (width, height) `sizes`) -> a document of our format."""
    out = []
    for cam, size in zip(cameras, sizes):
        entry = {"clip": cam.clip, "image_size": [int(size[0]), int(size[1])]}
        if cam.K is not None:
            entry.update(fx=float(cam.K[0, 0]), fy=float(cam.K[1, 1]), cx=float(cam.K[0, 2]), cy=float(cam.K[1, 2]))
        if cam.model is not None:
            keys = FISHEYE_KEYS if cam.model == "fisheye" else PINHOLE_KEYS
            entry["distortion"] = {"model": cam.model, **{k: float(v) for k, v in zip(keys, cam.dist)}}
        if cam.c2w is not None:
            entry["camera_to_world"] = np.asarray(cam.c2w, dtype=np.float64).tolist()
        out.append(entry)
    return {"format": FORMAT, "version": VERSION, "units": units, "cameras": out}


# ------------------------------------------------------------------------- typed in (add-on)

LENS_KEYS = {"pinhole": PINHOLE_KEYS, "fisheye": FISHEYE_KEYS}
TYPED = "cameras typed in"
# The fields of an entry that each typed-in group replaces in a file's entry.
_GROUPS = {"intrinsics": ("fx", "fy", "cx", "cy", "image_size", "image_size_of_clip"),
           "lens": ("distortion",), "pose": ("camera_to_world", "world_to_camera")}


def euler_xyz_to_matrix(angles):
    """XYZ Euler angles (radians; Blender's 'XYZ' order: R = Rz Ry Rx) -> (3, 3) rotation."""
    from ..geometry.rotations import axis_angle_to_matrix

    a = np.asarray(angles, dtype=np.float64).reshape(3)
    rx, ry, rz = (axis_angle_to_matrix(np.eye(3)[i] * a[i]) for i in range(3))
    return rz @ ry @ rx


def typed_entry(clip, intrinsics=None, lens=None, pose=None):
    """What is typed in for one clip -> an entry of our document, checked like a file's entry.

    intrinsics: dict fx, fy, cx, cy (pixels) and width, height (the image size they are in);
    lens: dict model ("pinhole" | "fisheye") and its coefficients (absent ones are 0);
    pose: dict location (x, y, z; metres) and rotation (XYZ Euler, radians) of the camera in the
    world (camera-to-world, OpenCV camera axes: x right, y down, z forward).
    Each None when not given. Returns the entry, or None when nothing is given.
    """
    entry = {"clip": clip}
    if intrinsics is not None:
        entry.update({k: float(intrinsics[k]) for k in ("fx", "fy", "cx", "cy")})
        entry["image_size"] = [int(intrinsics["width"]), int(intrinsics["height"])]
        if min(entry["image_size"]) <= 0:
            raise ChrommError(f"{TYPED}: clip '{clip}': field 'image_size' must be a positive width and height")
    if lens is not None:
        keys = LENS_KEYS.get(lens.get("model"))
        if keys is None:
            raise ChrommError(f"{TYPED}: clip '{clip}': field 'distortion.model' is {lens.get('model')!r}; "
                              f"name it: {' or '.join(LENS_KEYS)}")
        entry["distortion"] = {"model": lens["model"], **{k: float(lens.get(k, 0.0)) for k in keys}}
    if pose is not None:
        c2w = np.eye(4)
        c2w[:3, :3] = euler_xyz_to_matrix(pose["rotation"])
        c2w[:3, 3] = np.asarray(pose["location"], dtype=np.float64).reshape(3)
        entry["camera_to_world"] = c2w.tolist()
    if len(entry) == 1:
        return None
    check = dict(entry)
    if "fx" not in check:               # a lens for a file's intrinsics: checked with them later
        check.pop("distortion", None)
    _known_camera(check, clip, entry.get("image_size") or (1, 1), TYPED, [])   # the file's checks and messages
    return entry


def with_typed(doc, typed, clip_names):
    """A file's document (or None) and typed-in entries (one per clip name or None) -> (document,
    notes). For each clip, what is typed in (intrinsics, lens, pose: each a group) replaces the
    file's; a note names every clip and group where it did."""
    typed = {name: e for name, e in zip(clip_names, typed) if e is not None}
    if not typed:
        return doc, []
    if doc is None:
        return {"format": FORMAT, "version": VERSION, "units": "m", "source": TYPED,
                "cameras": [typed.get(name, {"clip": name}) for name in clip_names]}, []
    where = doc.get("source") or "cameras"
    check_document(doc, where)
    entries, notes, out = _entries_per_clip(doc, clip_names, where, covered=typed), [], []
    factor = UNITS[doc["units"]] if doc.get("units") else 1.0
    for name, entry in zip(clip_names, entries):
        entry = {k: v for k, v in (entry or {}).items() if k != "clip"}
        if factor != 1.0:               # the typed-in poses are metres: the file's become metres too
            _scale_pose_entry(entry, factor, where)
        given = typed.get(name, {})
        replaced = [g for g, keys in _GROUPS.items()
                    if any(k in given for k in keys) and any(entry.get(k) is not None for k in keys)]
        for group, keys in _GROUPS.items():
            if any(k in given for k in keys):
                for k in keys:
                    entry.pop(k, None)
        entry.update({k: v for k, v in given.items() if k != "clip"})
        out.append(dict(entry, clip=name))
        if replaced:
            notes.append(f"clip '{name}': the {', '.join(replaced)} typed in replace those of {where}")
    merged = {"format": FORMAT, "version": VERSION, "cameras": out, "source": f"{where} + {TYPED}"}
    if doc.get("units") is not None:
        merged["units"] = "m"
    return merged, notes
