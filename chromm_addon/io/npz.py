"""Shared checks for the project's .npz formats: safe loading and precise per-key validation."""

import json
import zipfile

import numpy as np

from ..errors import ChrommError


def load_npz(path, kind):
    """Read every array of an .npz into a dict without unpickling; one-line errors otherwise."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise ChrommError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ChrommError(f"{path}: is a directory, expected a {kind} file (.npz)") from None
    except OSError as exc:
        raise ChrommError(f"{path}: cannot be read ({exc.strerror})") from None
    if head != b"PK\x03\x04":
        raise ChrommError(f"{path}: not a {kind} file (not an .npz zip archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {}
            for key in data.files:
                try:
                    arrays[key] = data[key]
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):
                        raise  # a damaged array, reported below as a corrupt file
                    raise ChrommError(
                        f"{path}: key '{key}' holds pickled objects, which are refused; "
                        "write plain arrays") from None
    except ChrommError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ChrommError(f"{path}: truncated or corrupt {kind} file ({exc})") from None
    return arrays


def parse_meta(path, arrays, fmt, versions):
    """Decode the 0-d JSON `meta` string and check format name and version."""
    if "meta" not in arrays:
        raise ChrommError(f"{path}: missing key 'meta'")
    meta_arr = arrays["meta"]
    if meta_arr.shape != () or meta_arr.dtype.kind != "U":
        raise ChrommError(f"{path}: key 'meta' must be a 0-d string, got {_describe(meta_arr)}")
    try:
        meta = json.loads(str(meta_arr))
    except json.JSONDecodeError as exc:
        raise ChrommError(f"{path}: key 'meta' is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict):
        raise ChrommError(f"{path}: key 'meta' must be a JSON object")
    if meta.get("format") != fmt:
        raise ChrommError(f"{path}: meta format is {meta.get('format')!r}, expected {fmt!r}")
    if meta.get("version") not in versions:
        raise ChrommError(f"{path}: unsupported {fmt} version {meta.get('version')!r} "
                          f"(this reader knows {', '.join(map(str, versions))})")
    return meta


def plain_extra_arrays(path, extra, known):
    """Check the extra keys a writer passes through: plain arrays under names the format lacks."""
    out = {}
    for key, value in extra.items():
        if key in known:
            raise ChrommError(f"{path}: extra key '{key}' clashes with a key of the format")
        a = np.asarray(value)
        if a.dtype.hasobject:
            raise ChrommError(f"{path}: extra key '{key}' holds Python objects, which cannot be "
                              "written without pickling; use plain arrays")
        out[key] = a
    return out


def _describe(a):
    return f"shape {tuple(a.shape)} dtype {a.dtype}"


class ArraySpec:
    """Expected shape (ints fixed, strings named dimensions) and dtype kind of one key."""

    def __init__(self, shape, kinds, dtype, optional=False, finite=True):
        self.shape, self.kinds, self.dtype = shape, kinds, np.dtype(dtype)
        self.optional, self.finite = optional, finite


def check_arrays(path, arrays, specs, dims=None):
    """Check every spec'd key and bind named dimensions consistently; returns dims and arrays.

    Arrays are cast to the spec's dtype when their kind is allowed (e.g. float64 -> float32).
    """
    dims = dict(dims or {})
    out = {}
    for key, spec in specs.items():
        if key not in arrays:
            if spec.optional:
                continue
            raise ChrommError(f"{path}: missing key '{key}'")
        a = arrays[key]
        if a.dtype.kind not in spec.kinds:
            raise ChrommError(f"{path}: key '{key}' has dtype {a.dtype}, expected {spec.dtype}")
        if a.ndim != len(spec.shape):
            raise ChrommError(f"{path}: key '{key}' has {_describe(a)}, expected "
                              f"{len(spec.shape)} dimensions {_shape_text(spec.shape)}")
        for axis, (want, got) in enumerate(zip(spec.shape, a.shape)):
            if isinstance(want, int):
                if got != want:
                    raise ChrommError(f"{path}: key '{key}' has shape {tuple(a.shape)}, expected "
                                      f"{_shape_text(spec.shape)}")
            elif want in dims and dims[want][0] != got:
                raise ChrommError(
                    f"{path}: key '{key}' has {want}={got} on axis {axis} but '{dims[want][1]}' "
                    f"has {want}={dims[want][0]}")
            else:
                dims.setdefault(want, (got, key))
        if a.dtype.kind in "iu" and spec.dtype.kind in "iu" and a.size:
            info = np.iinfo(spec.dtype)
            if a.min() < info.min or a.max() > info.max:
                raise ChrommError(f"{path}: key '{key}' has values outside the range of "
                                  f"{spec.dtype} [{info.min}, {info.max}]")
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(spec.dtype, copy=False)
        # Checked after the cast: float64 values beyond float32's range become inf there.
        if spec.finite and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ChrommError(f"{path}: key '{key}' contains NaN or infinite values")
        out[key] = a
    return {k: v[0] for k, v in dims.items()}, out


def _shape_text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"
