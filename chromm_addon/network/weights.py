"""Checkpoint files: where they live, how to read them, and strict loading into our modules.

Three kinds, read as they are published:

- Pi3X `model.safetensors` (hub id yyfz233/Pi3X): a flat safetensors state dict, its multimodal
  branch (depth encoder, ray embedding, pose injection) included. A file without that branch
  (all of its keys absent) still loads: the network is then built without it and cannot be
  conditioned on known cameras (`OPTIONAL_PREFIXES`).
- Multi-HMR `multiHMR_896_L.pt` (hub id naver/multiHMR_896_L): a torch pickle holding
  `{'epoch', 'iter', 'model_state_dict', 'args'}` where `args` is an argparse.Namespace. It is
  read with `torch.load(weights_only=True)` and argparse.Namespace as the only extra allowed
  class; any other class in the pickle is refused.
- CHROMM `chromm.safetensors` (our layout, see docs/network.md): one safetensors file whose keys
  are prefixed `heads.` (the CHROMM heads, required), and optionally `pi3x.` and `multihmr.`
  (fine-tuned backbones that replace the upstream files' weights). Metadata: `format` =
  `chromm.checkpoint`, `version` = `1`, `heads_preset`.

Loading is strict about shapes (a mismatch names the key, the file and both shapes) and about
missing keys; keys the architecture does not have are reported, never silently used.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import pickle
import re

from ..errors import ChrommError
from ..io.json_file import read_json_dict

PI3X_FILES = ("pi3x/model.safetensors", "model.safetensors")
MULTIHMR_FILE = "multiHMR_896_L.pt"
CHROMM_FILE = "chromm.safetensors"
CHROMM_FORMAT = "chromm.checkpoint"
CHROMM_VERSION = "1"

SOURCES = {
    "pi3x": "get it from the Hugging Face hub id yyfz233/Pi3X, file model.safetensors (CC BY-NC 4.0)",
    "multihmr": "get it from the Hugging Face hub id naver/multiHMR_896_L, file multiHMR_896_L.pt "
                "(NAVER non-commercial licence)",
    "chromm": "no public CHROMM weights yet; without this file the network runs in composition "
              "mode (Pi3X + Multi-HMR)",
}

# Checkpoint keys of parts we deliberately do not build: reported as unused, not as errors.
UNUSED_PREFIXES = {
    "pi3x": (),
    "multihmr": ("smpl_layer.",),
    "chromm": (),
}
# Parts a file may leave out as a whole (all their keys absent): Pi3X's multimodal branch
# (`pi3x.MULTIMODAL_PREFIXES`); not missing then, the network is built without them.
OPTIONAL_PREFIXES = {
    "pi3x": ("depth_encoder.", "depth_emb", "ray_embed.", "pose_inject_blk."),
}


def lacks_optional_part(kind, keys):
    """True when a file's `keys` hold none of the optional part of `kind` (it has one)."""
    prefixes = OPTIONAL_PREFIXES.get(kind)
    return bool(prefixes) and not any(k.startswith(prefixes) for k in keys)

_HASH_CACHE = ".chromm-hashes.json"


def default_weights_dir():
    """$CHROMM_WEIGHTS, else $XDG_CACHE_HOME/chromm/weights, else ~/.cache/chromm/weights."""
    env = os.environ.get("CHROMM_WEIGHTS")
    if env:
        return os.path.expanduser(env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "chromm", "weights")


def resolve_weights_dir(weights_dir=None):
    return os.path.abspath(os.path.expanduser(weights_dir)) if weights_dir else default_weights_dir()


@dataclasses.dataclass
class WeightFiles:
    """Paths of the checkpoint files found in one weights folder (None where absent)."""

    folder: str
    pi3x: str = None
    multihmr: str = None
    chromm: str = None

    def where_to_put(self, kind):
        name = {"pi3x": PI3X_FILES[0], "multihmr": MULTIHMR_FILE, "chromm": CHROMM_FILE}[kind]
        return os.path.join(self.folder, name)


def find_weight_files(weights_dir=None):
    folder = resolve_weights_dir(weights_dir)
    found = WeightFiles(folder)
    for name in PI3X_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            found.pi3x = os.path.join(folder, name)
            break
    for kind, name in (("multihmr", MULTIHMR_FILE), ("chromm", CHROMM_FILE)):
        if os.path.isfile(os.path.join(folder, name)):
            setattr(found, kind, os.path.join(folder, name))
    return found


# ------------------------------------------------------------------------------------ reading

def _unsupported_global(exc):
    match = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return match.group(1) if match else None


def read_multihmr_checkpoint(path, map_location="cpu", mmap=False):
    """(state_dict, args) from a Multi-HMR pickle, with argparse.Namespace as the only extra class.

    `mmap=True` maps the tensors instead of reading them (for key and shape checks).
    """
    import zipfile

    import torch

    mmap = mmap and zipfile.is_zipfile(path)  # torch's legacy (pre-1.6) format cannot be mapped
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        name = _unsupported_global(exc)
        if name is None:
            raise ChrommError(f"{path}: not a readable torch checkpoint ({_first_line(exc)})") from None
        raise ChrommError(f"{path}: refused to unpickle: it holds the class {name}; only tensors, plain "
                          f"containers and argparse.Namespace are allowed in a Multi-HMR checkpoint") from None
    except Exception as exc:  # zipfile, struct and torch errors for a damaged or foreign file
        raise ChrommError(f"{path}: not a readable torch checkpoint ({_first_line(exc)})") from None
    if isinstance(ckpt, dict) and isinstance(ckpt.get("model_state_dict"), dict):
        state, args = ckpt["model_state_dict"], ckpt.get("args")
    elif isinstance(ckpt, dict) and ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
        state, args = ckpt, None
    else:
        raise ChrommError(f"{path}: not a Multi-HMR checkpoint (no 'model_state_dict')")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state), args


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _open_safetensors(path):
    from safetensors import safe_open

    try:
        return safe_open(path, framework="pt")
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise ChrommError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None


def safetensors_metadata(path):
    with _open_safetensors(path) as f:
        return dict(f.metadata() or {})


def read_key_shapes(path, kind):
    """{key: shape} of a checkpoint without reading its tensors (header or memory map only)."""
    if kind == "multihmr":
        state, _ = read_multihmr_checkpoint(path, mmap=True)
        return {k: tuple(v.shape) for k, v in state.items()}
    with _open_safetensors(path) as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def read_state_dict(path, kind, device="cpu"):
    """{key: tensor} of a checkpoint of the given kind ('pi3x', 'multihmr' or 'chromm')."""
    if kind == "multihmr":
        return read_multihmr_checkpoint(path, map_location=device)[0]
    from safetensors.torch import load_file

    with _open_safetensors(path):  # a clear error for a bad header
        pass
    return load_file(path, device=str(device))


def split_chromm_state(state, path):
    """CHROMM checkpoint dict -> {'heads': ..., 'pi3x': ..., 'multihmr': ...} (prefixes removed)."""
    parts = {"heads": {}, "pi3x": {}, "multihmr": {}}
    for key, value in state.items():
        prefix, _, rest = key.partition(".")
        if prefix not in parts or not rest:
            raise ChrommError(f"{path}: key '{key}' has none of the prefixes heads., pi3x., multihmr.")
        parts[prefix][rest] = value
    if not parts["heads"]:
        raise ChrommError(f"{path}: a CHROMM checkpoint must hold the 'heads.' weights")
    return parts


def check_chromm_metadata(path):
    meta = safetensors_metadata(path)
    if meta.get("format") != CHROMM_FORMAT:
        raise ChrommError(f"{path}: not a CHROMM checkpoint (metadata format is "
                          f"{meta.get('format')!r}, expected {CHROMM_FORMAT!r})")
    if meta.get("version") != CHROMM_VERSION:
        raise ChrommError(f"{path}: CHROMM checkpoint version {meta.get('version')!r} is not "
                          f"supported (expected {CHROMM_VERSION})")
    return meta


def save_chromm_checkpoint(path, heads, pi3x=None, multihmr=None, heads_preset="full"):
    """Write a CHROMM checkpoint from modules (pi3x and multihmr optional), atomically."""
    from safetensors.torch import save_file

    from ..io.atomic import atomic_output

    tensors = {}
    for prefix, module in (("heads", heads), ("pi3x", pi3x), ("multihmr", multihmr)):
        if module is not None:
            for key, value in module.state_dict().items():
                tensors[f"{prefix}.{key}"] = value.detach().to("cpu").contiguous()
    meta = {"format": CHROMM_FORMAT, "version": CHROMM_VERSION, "heads_preset": heads_preset}
    with atomic_output(path, suffix=".safetensors") as tmp:
        save_file(tensors, tmp, metadata=meta)
    return path


# ---------------------------------------------------------------------------------- matching

@dataclasses.dataclass
class LoadReport:
    """Outcome of matching a checkpoint's keys against an architecture."""

    path: str
    loaded: int = 0
    missing: list = dataclasses.field(default_factory=list)
    unexpected: list = dataclasses.field(default_factory=list)
    unused: list = dataclasses.field(default_factory=list)
    optional_absent: tuple = ()     # prefixes of an optional part the file does not hold

    def summary(self):
        parts = [f"{self.loaded} tensors match"]
        if self.optional_absent:
            parts.append(f"without the optional {_prefixes(list(self.optional_absent))} "
                         "(no conditioning on known cameras)")
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({_preview(self.missing)})")
        if self.unused:
            parts.append(f"{len(self.unused)} unused by design ({_prefixes(self.unused)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({_preview(self.unexpected)})")
        return ", ".join(parts)


def _preview(keys, n=3):
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _prefixes(keys):
    return ", ".join(sorted({k.split(".")[0] for k in keys}))


def match_shapes(expected, found, path, unused_prefixes=(), key_prefix="", optional_prefixes=()):
    """Compare {key: shape} of an architecture with a checkpoint's; a shape mismatch raises.

    Returns a LoadReport; missing keys are listed there (load_into makes them an error).
    `key_prefix` is how the file spells the keys (a CHROMM checkpoint's 'heads.'), for messages.
    Keys under `optional_prefixes` are not missing when the file holds none of them.
    """
    report = LoadReport(path)
    if optional_prefixes and not any(k.startswith(tuple(optional_prefixes)) for k in found):
        expected = {k: v for k, v in expected.items() if not k.startswith(tuple(optional_prefixes))}
        report.optional_absent = tuple(optional_prefixes)
    for key, shape in found.items():
        if key in expected:
            if tuple(expected[key]) != tuple(shape):
                raise ChrommError(f"{path}: key '{key_prefix}{key}' has shape {list(shape)} but the "
                                  f"network expects {list(expected[key])}")
            report.loaded += 1
        elif key.startswith(tuple(unused_prefixes)):
            report.unused.append(key_prefix + key)
        else:
            report.unexpected.append(key_prefix + key)
    report.missing = [key_prefix + k for k in expected if k not in found]
    return report


def module_shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def load_into(module, state, path, kind, device=None, key_prefix=""):
    """Load a checkpoint's tensors into `module`: strict on shapes and on missing keys.

    A module built on the meta device takes the checkpoint's tensors (moved to `device`, float32)
    as its own, so the weights are allocated once; otherwise they are copied in. Keys the module
    does not have are reported (unused by design or unexpected), never loaded. A Pi3X file without
    the multimodal branch drops the module's (`Pi3X.disable_multimodal`).
    """
    import torch

    if lacks_optional_part(kind, state) and hasattr(module, "disable_multimodal"):
        module.disable_multimodal()
    report = match_shapes(module_shapes(module), {k: tuple(v.shape) for k, v in state.items()},
                          path, UNUSED_PREFIXES.get(kind, ()), key_prefix, OPTIONAL_PREFIXES.get(kind, ()))
    if report.missing:
        raise ChrommError(f"{path}: {len(report.missing)} weights the network needs are missing "
                          f"({_preview(report.missing)}); run `python -m chromm_addon weights check`")
    target = module.state_dict()
    if any(v.is_meta for v in target.values()):
        def convert(v):
            return v.to(device=device or "cpu", dtype=torch.float32 if v.is_floating_point() else v.dtype)

        module.load_state_dict({k: convert(state[k]) for k in target}, strict=True, assign=True)
    else:
        with torch.no_grad():
            for key, value in target.items():
                value.copy_(state[key])
    return report


# ----------------------------------------------------------------------------------- hashing

def sha256_file(path, cache=True):
    """Hex SHA-256 of a file; cached beside it (size + mtime) when the folder is writable."""
    if cache:
        hit = _hash_cache(path)[1].get(os.path.basename(path))
        if isinstance(hit, dict) and hit.get("stamp") == _stamp(path):
            return hit["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 23), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    if cache:
        remember_sha256(path, value)
    return value


def _stamp(path):
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def _hash_cache(path):
    cache_path = os.path.join(os.path.dirname(path), _HASH_CACHE)
    return cache_path, read_json_dict(cache_path)


def remember_sha256(path, value):
    """Record a file's SHA-256 in the hash cache (after a rename keeps its size and mtime)."""
    cache_path, entries = _hash_cache(path)
    entries[os.path.basename(path)] = {"stamp": _stamp(path), "sha256": value}
    try:
        with open(cache_path + ".tmp", "w") as f:
            json.dump(entries, f)
        os.replace(cache_path + ".tmp", cache_path)
    except OSError:
        pass
