"""The options schema: every setting of a reconstruction, declared once.

`ReconstructOptions` (clips -> take) holds `FuseOptions` (views -> take), which holds the options
of each test-time module. Each field carries its help text, unit and range in its metadata
(`option(...)`); the command-line flags (`add_arguments`), the service's request models
(`backend/server.py`, built by `request_model`), the add-on's scene properties
(`panels/properties.py`) and the JSON of `--config` files and of a take's `meta["options"]` are
all derived from these declarations. To add an option, add one field here (docs/developing.md).

Field metadata:
  help     one sentence, shown by `--help`, the service's schema and the add-on's tooltips
  unit     "m", "rad", "s", "fps", "m/s", "timesteps", ... ("" for plain numbers)
  min/max  inclusive range (None: unbounded); `gt=True` makes `min` exclusive
  choices  {value: description} for string options
  scope    "job": set per reconstruction (CLI, request body, add-on scene settings);
           "service": set per process (CLI of `reconstruct` and `serve`, add-on preferences);
           "input": the clips themselves
  auto     for options that may be None: what None means ("the slowest clip's rate")
  label    short name for the add-on ("Frame rate")
  presets  {NAME: (value, description)}: the add-on offers these instead of a number
  toggle   (name, label) of the add-on's bool property that enables an optional value (fields may share it)
  developer  True: hidden from --help and the add-on (tests, benchmarks)
  ui_default the add-on's initial value of an optional option behind a toggle

Stdlib only: importable by the add-on, the CLI and the service without torch or bpy.
"""

import dataclasses
import json
import math
import re
import typing

from .errors import ChrommError
from .network.registry import NETWORK_CHOICES

JOB, SERVICE, INPUT = "job", "service", "input"


def option(default=None, help="", unit="", min=None, max=None, gt=False, choices=None, scope=JOB,
           auto=None, label=None, presets=None, toggle=None, developer=False, accept=None, ui_default=None):
    """A schema field; `accept` is a regular expression of extra values a choice option takes."""
    meta = dict(help=help, unit=unit, min=min, max=max, gt=gt, choices=choices, scope=scope, auto=auto,
                label=label, presets=presets, toggle=toggle, developer=developer, accept=accept,
                ui_default=ui_default)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def group(cls, help, scope=JOB):
    """A nested block of options (a dataclass of this schema)."""
    return dataclasses.field(default_factory=cls, metadata=dict(help=help, scope=scope, group=True))


# ------------------------------------------------------------------------------ test-time modules

FILTER_CHOICES = {"quadratic": "zero-phase local quadratic fit (no lag; the default, chosen by measurement)",
                  "one_euro": "One Euro filter (causal, lags; for comparison)"}

@dataclasses.dataclass
class AssociationOptions:
    head_gate_m: float = option(0.5, "largest head distance of two detections of one person", "m", min=0)
    root_gate_rad: float = option(1.0, "largest root orientation difference of two detections of one "
                                  "person", "rad", min=0, max=math.pi)
    body_gate_rad: float = option(1.0, "largest mean body-joint rotation difference of two detections "
                                  "of one person", "rad", min=0, max=math.pi)
    sigma_head_m: float = option(0.15, "head distance that costs as much as one sigma", "m", gt=True, min=0)
    sigma_root_rad: float = option(0.35, "root angle that costs as much as one sigma", "rad", gt=True, min=0)
    sigma_body_rad: float = option(0.35, "body angle that costs as much as one sigma", "rad", gt=True, min=0)
    adaptive: bool = option(True, "widen the head and root gates with the noise measured in the views")
    adaptive_factor: float = option(5.0, "measured noise times this gives the adaptive gate", "", gt=True, min=0)
    max_widening: float = option(2.0, "an adaptive gate is at most this many times the fixed gate", "", min=1)


@dataclasses.dataclass
class FusionOptions:
    head_outlier_m: float = option(0.3, "a view's head farther than this from the fused head is left out",
                                   "m", gt=True, min=0)
    rot_outlier_rad: float = option(0.7, "a view's rotation farther than this from the fused rotation is "
                                    "left out", "rad", gt=True, min=0)
    depth_sigma_ratio: float = option(3.0, "how much less a view's depth is trusted than its image "
                                      "position", "", gt=True, min=0)
    karcher_iters: int = option(2, "Karcher mean steps after the chordal start", "iterations", min=0, max=50)
    pelvis_correction: bool = option(True, "correct the fused root orientation towards the views' pelvis "
                                     "directions")
    max_pelvis_correction_rad: float = option(0.35, "largest pelvis correction", "rad", min=0, max=math.pi)


@dataclasses.dataclass
class FloorOptions:
    plane_inlier_m: float = option(0.03, "distance within which a scene point lies on the floor plane",
                                   "m", gt=True, min=0)
    plane_max_tilt_rad: float = option(0.35, "largest angle between the scene's floor plane and the people's "
                                       "up direction", "rad", min=0, max=math.pi / 2)
    plane_max_offset_m: float = option(0.5, "largest distance between the scene's floor plane and the "
                                       "people's feet", "m", min=0)
    plane_min_points: int = option(50, "fewest scene points that make a floor plane", "points", min=3)
    ransac_hypotheses: int = option(256, "planes tried by RANSAC", "hypotheses", min=1, max=100000)
    ransac_max_points: int = option(20000, "scene points RANSAC looks at (a random subset beyond)", "points",
                                    min=3)
    min_foot_spread_m: float = option(0.5, "spread the feet must cover to define a floor plane", "m", min=0)


@dataclasses.dataclass
class TrackingOptions:
    gate_m: float = option(0.4, "largest head distance between a track's prediction and a new body", "m",
                           gt=True, min=0)
    active_gap_s: float = option(0.1, "a track missing longer than this is matched with the re-identification "
                                 "cost", "s", min=0)
    max_gap_s: float = option(4.0, "a track missing longer than this ends", "s", min=0)
    reid_speed_mps: float = option(0.8, "walking speed that bounds where a missing person can reappear",
                                   "m/s", min=0)
    max_extrapolation_s: float = option(1.0, "longest time a track's motion is extrapolated", "s", min=0)
    betas_weight: float = option(0.5, "weight of the body-shape difference in the matching cost", "m", min=0)
    turn_cost_m_per_rad: float = option(0.3, "cost of a root orientation difference in the matching cost",
                                        "m/rad", min=0)
    velocity_window: int = option(10, "timesteps a track's velocity is estimated over", "timesteps", min=1,
                                  max=1000)
    max_speed_mps: float = option(3.0, "fastest plausible motion of a person", "m/s", gt=True, min=0)
    min_track_s: float = option(0.3, "tracks shorter than this are dropped", "s", min=0)
    duplicate_m: float = option(0.3, "two tracks closer than this throughout are merged", "m", min=0)
    reid_betas_gate: float = option(1.5, "a lost track is not re-identified with a body whose shape differs "
                                    "more than this", "", gt=True, min=0)
    exit_horizon_s: float = option(0.3, "a lost track that would be out of every camera's sight this long "
                                   "after its last sighting walked out: it is not re-identified", "s", min=0)


@dataclasses.dataclass
class FootLockOptions:
    contact_height_m: float = option(0.06, "a foot enters contact below this height above a flat foot on "
                                     "the floor", "m", min=0)
    release_height_m: float = option(0.10, "a foot leaves contact above this height", "m", min=0)
    contact_speed_mps: float = option(0.6, "a foot enters contact when slower than this", "m/s", gt=True, min=0)
    release_speed_mps: float = option(1.0, "a foot leaves contact when faster than this", "m/s", gt=True, min=0)
    min_contact_s: float = option(0.1, "contacts shorter than this are ignored", "s", min=0)
    min_break_s: float = option(0.1, "breaks between contacts shorter than this are filled", "s", min=0)
    max_travel_m: float = option(0.15, "a contact along which the foot strays further than this from its "
                                 "median place is split where the foot moves fastest", "m", gt=True, min=0)
    speed_baseline_s: float = option(0.1, "a foot's speed is its displacement over plus and minus this",
                                     "s", gt=True, min=0, max=2)
    blend_s: float = option(0.25, "the lock blends in and out over this on either side of a contact", "s",
                            min=0, max=2)
    reach_fraction: float = option(0.98, "a locked leg stretches to at most this share of its length; the "
                                   "root comes down for the rest", "", gt=True, min=0.5, max=1)


@dataclasses.dataclass
class MotionSyncOptions:
    max_offset_s: float = option(3.0, "time offsets between views are searched up to this", "s", gt=True, min=0)
    link_gate_m: float = option(0.35, "largest head step between frames within one view's tracklet", "m",
                                gt=True, min=0)
    truncate_m: float = option(0.5, "head distances between views beyond this count as this", "m", gt=True,
                               min=0)
    orientation_m: float = option(0.2, "cost in metres of opposite body orientations (per unit chord)",
                                  "m", min=0)
    exclude_s: float = option(0.5, "the second-best offset is looked for farther than this", "s", min=0)
    min_confidence: float = option(0.25, "views synchronised with less confidence are left unshifted", "",
                                   min=0, max=1)
    smooth_frames: float = option(2.0, "Gaussian smoothing of each tracklet before comparing", "frames",
                                  min=0, max=30)
    keep_fraction: float = option(0.5, "the cost is the mean of this best fraction of detections", "",
                                  gt=True, min=0, max=1)
    max_disagreement_m: float = option(0.1, "constant difference between two views' people removed at most",
                                       "m", min=0)
    max_spread_frames: float = option(1.0, "offsets from the take's two halves disagreeing by this much "
                                      "give confidence 0", "frames", gt=True, min=0)
    min_take_s: float = option(3.0, "shorter takes are not synchronised by motion", "s", min=0)
    min_shift_frames: float = option(0.5, "views are resampled only when some offset is at least this",
                                     "frames", min=0)
    max_frames: int = option(600, "reference frames compared at most (longer takes: every k-th)", "frames",
                             min=10)
    min_common: int = option(10, "fewest reference detections compared for an offset to count",
                             "detections", min=1)


SYNC_CHOICES = {"auto": "audio when every clip has confident audio (checked by motion), motion otherwise; "
                        "a views file: motion",
                "audio": "from the clips' sound (a clap, speech, music)",
                "motion": "from the people's movement in the views",
                "none": "the clips are taken as synchronised"}


@dataclasses.dataclass
class FuseOptions:
    """The test-time modules' options (`fuse`, and the fusion stage of `reconstruct`)."""

    min_score: float = option(0.3, "detections scoring lower are ignored", "", min=0, max=1)
    association: AssociationOptions = group(AssociationOptions, "cross-view association")
    fusion: FusionOptions = group(FusionOptions, "multi-view fusion")
    floor: FloorOptions = group(FloorOptions, "gravity and floor alignment")
    tracking: TrackingOptions = group(TrackingOptions, "tracking across time")
    scale_along_prediction: bool = option(True, "scale ratio from the image vector's component along the "
                                          "predicted one (off: the paper's plain length ratio)")
    smooth: bool = option(True, "filter people's motion over time", label="Smooth motion")
    smooth_filter: str = option("quadratic", "temporal filter of people and moving cameras",
                                choices=FILTER_CHOICES, label="Filter")
    smooth_window_s: float = option(0.35, "half window of the quadratic filter (stronger smoothing: longer)",
                                    "s", gt=True, min=0, max=5, label="Smoothing window")
    smooth_adaptive: bool = option(True, "widen the window for people whose measured head noise exceeds the "
                                   "reference noise")
    smooth_reference_noise_m: float = option(0.02, "head noise the smoothing window is meant for", "m",
                                             gt=True, min=0)
    smooth_max_gap_s: float = option(0.2, "the quadratic filter and the foot locking run across gaps in a "
                                     "person's track up to this long (missed frames; 0: every gap ends a "
                                     "segment)", "s", min=0, max=2)
    smooth_root: bool = option(True, "filter the root translation once more after it is derived from the "
                               "filtered head and pose (the spine's leftover rotation noise leaves the pelvis; the "
                               "head follows the root)")
    one_euro_min_cutoff_hz: float = option(1.0, "One Euro filter: cutoff frequency at rest", "Hz", gt=True,
                                           min=0)
    one_euro_beta: float = option(0.5, "One Euro filter: how fast the cutoff rises with speed", "s/m", min=0)
    smooth_cameras: bool = option(True, "filter moving cameras over time and write cameras that stand still "
                                  "as one pose", label="Smooth cameras")
    camera_window_s: float = option(0.5, "half window of the camera filter", "s", gt=True, min=0, max=10)
    static_camera_m: float = option(0.03, "a camera whose filtered centre stays this close to its mean ...",
                                    "m", min=0)
    static_camera_deg: float = option(0.5, "... and whose rotation stays this close to its mean stands still",
                                      "deg", min=0, max=180)
    foot_lock: bool = option(True, "detect foot contact and hold planted feet in place on the floor",
                             label="Lock feet")
    foot: FootLockOptions = group(FootLockOptions, "foot contact and locking")
    frame: str = option("auto", "world frame of the take",
                        choices={"auto": "the given cameras' when camera poses are given, else floor",
                                 "cameras": "the views' world as it is: no rescale by the people, no floor "
                                            "alignment",
                                 "floor": "rescaled by the people's size and floor-aligned, Z up"},
                        label="World frame")
    sync: str = option("auto", "how the views' time offsets are found when no offsets are given "
                       "(docs/sync.md)", choices=SYNC_CHOICES, label="Sync")
    motion_sync: MotionSyncOptions = group(MotionSyncOptions, "synchronisation by motion")


# ------------------------------------------------------------------------------ reconstruction

DEVICES = {"auto": "GPU when there is one", "cpu": "slow; for trying things out", "cuda": "CUDA GPU (cuda:N for GPU N)"}


@dataclasses.dataclass
class ReconstructOptions:
    """Clips -> take: timeline, network and fusion options."""

    clips: list = option([], "video files or folders of images, one per view", scope=INPUT)
    offsets: list = option(None, "one per clip: time in the clip of the common zero, '1.5s' or '12f'",
                           auto="found by the sync stage (see sync)")
    resync: bool = option(False, "synchronise the clips even when offsets are given")
    fps: float = option(None, "target frame rate", "fps", min=0, max=240, gt=True,
                        auto="the slowest clip's rate", label="Frame rate")
    start: float = option(None, "first time to reconstruct on the common timeline", "s",
                          auto="where all clips have begun", toggle=("use_range", "Limit time range"))
    end: float = option(None, "last time to reconstruct on the common timeline", "s",
                        auto="where the earliest-ending clip ends", toggle=("use_range", "Limit time range"),
                        ui_default=10.0)
    window: int = option(None, "timesteps per network window", "timesteps", min=2, max=100000,
                         auto="the longest window the device's free memory fits", label="Quality",
                         presets={"FAST": (8, "8 timesteps per window: quick, for previews"),
                                  "BALANCED": (16, "16 timesteps per window"),
                                  "BEST": (None, "the longest windows the device's memory fits (slowest)")})
    image_fps: float = option(None, "frame rate assumed for folders of images", "fps", min=0, max=240,
                              gt=True, auto="30")
    network: str = option("auto", "which network runs", choices=NETWORK_CHOICES, scope=SERVICE, label="Network")
    device: str = option("auto", "where the network runs", choices=DEVICES, accept=r"cuda:\d+",
                         scope=SERVICE, label="Device")
    weights: str = option(None, "network weights folder", scope=SERVICE, auto="the installed weights")
    smplx: str = option(None, "SMPLX_NEUTRAL.npz for the rest joints", scope=SERVICE,
                        auto="$CHROMM_SMPLX_MODEL; without one an approximate skeleton")
    cameras: dict = option(None, "known cameras (a camera document, docs/cameras.md): intrinsics, lens "
                           "distortion and poses per clip", auto="none known: all estimated")
    seed: int = option(0, "seed of the random-initialised networks", min=0, scope=SERVICE, developer=True)
    fuse: FuseOptions = group(FuseOptions, "the test-time modules")

    @property
    def tiny_network(self):
        return self.network == "tiny"


# ------------------------------------------------------------------------------ walking the schema

@dataclasses.dataclass(frozen=True)
class Leaf:
    """One option: `path` its attribute path from the root ("fuse", "tracking", "gate_m"), `key` its
    flat name (the path without "fuse", joined by "_"), used for CLI flags and add-on properties."""

    path: tuple
    key: str
    field: dataclasses.Field
    type: type
    optional: bool

    @property
    def meta(self):
        return self.field.metadata

    @property
    def flag(self):
        return "--" + self.key.replace("_", "-")

    @property
    def default(self):
        f = self.field
        return f.default_factory() if f.default is dataclasses.MISSING else f.default

    def get(self, options):
        for name in self.path:
            options = getattr(options, name)
        return options

    def set(self, options, value):
        for name in self.path[:-1]:
            options = getattr(options, name)
        setattr(options, self.path[-1], value)

    def describe(self):
        """The help text with unit, range and default: `--help`, tooltips and docs."""
        m = self.meta
        parts = [m["help"]]
        rng = range_text(m)
        if m["unit"] or rng:
            parts.append(f"({', '.join(p for p in (m['unit'], rng) if p)})")
        if m["choices"]:
            parts.append("; " + "; ".join(f"{k}: {v}" for k, v in m["choices"].items()))
        if self.optional and m["auto"]:
            parts.append(f"; default: {m['auto']}")
        elif not isinstance(self.default, list) and self.default is not None:
            parts.append(f"; default {self.default}")
        return " ".join(parts).replace(" ;", ";")


def range_text(meta):
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f"{'>' if meta['gt'] else '>='} {lo:g}"
    if lo is None:
        return f"<= {hi:g}"
    return f"over {lo:g}, up to {hi:g}" if meta["gt"] else f"{lo:g} to {hi:g}"


def _base_type(annotation):
    return {float: float, int: int, bool: bool, str: str, list: list}.get(annotation, annotation)


def leaves(cls, scopes=None, _path=(), _scope=None):
    """Every option of `cls` (recursing into groups), optionally only those of `scopes`."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        scope = f.metadata.get("scope", JOB)
        if f.metadata.get("group"):
            out += leaves(hints[f.name], scopes, _path + (f.name,), scope)
            continue
        if scopes is not None and scope not in scopes:
            continue
        path = _path + (f.name,)
        key = "_".join(p for p in path if p != "fuse")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        out.append(Leaf(path, key, f, _base_type(hints[f.name]), default is None))
    return out


def is_group(value):
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


# ------------------------------------------------------------------------------ validation

def check_value(leaf, value, source):
    """The value converted to the option's type; ChrommError naming `source` and the option otherwise."""
    m = leaf.meta
    name = f"{source}: {leaf.key}" if source else leaf.flag
    if value is None:
        if leaf.optional:
            return None
        raise ChrommError(f"{name}: a value is required")
    if leaf.type is list:
        if not isinstance(value, (list, tuple)):
            raise ChrommError(f"{name}: expected a list, got {value!r}")
        return list(value)
    if leaf.type is bool:
        if not isinstance(value, bool):
            raise ChrommError(f"{name}: expected true or false, got {value!r}")
        return value
    if leaf.type in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (leaf.type is int and isinstance(value, float) and not value.is_integer()):
            raise ChrommError(f"{name}: expected {'an integer' if leaf.type is int else 'a number'}, "
                              f"got {value!r}")
        value = leaf.type(value)
        lo, hi = m["min"], m["max"]
        if math.isnan(value) or (lo is not None and (value < lo or (m["gt"] and value == lo))) or \
                (hi is not None and value > hi):
            unit = f" {m['unit']}" if m["unit"] else ""
            raise ChrommError(f"{name} {value:g}: out of range ({range_text(m)}{unit})")
        return value
    if leaf.type is str:
        if not isinstance(value, str):
            raise ChrommError(f"{name}: expected text, got {value!r}")
        if m["choices"] and value not in m["choices"] and not (m["accept"] and re.fullmatch(m["accept"], value)):
            *first, last = m["choices"]
            raise ChrommError(f"{name} {value!r}: expected {', '.join(first)} or {last}")
        return value
    return value


def validate(options, source=""):
    """Check every option of a schema dataclass in place (converting ints to floats and so on)."""
    for leaf in leaves(type(options)):
        leaf.set(options, check_value(leaf, leaf.get(options), source))
    return options


# ------------------------------------------------------------------------------ JSON

def to_dict(options):
    """Nested plain dict of a schema dataclass (JSON-serialisable)."""
    out = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        out[f.name] = to_dict(value) if is_group(value) else (list(value) if isinstance(value, tuple) else value)
    return out


def from_dict(cls, data, source="options", base=None):
    """A validated `cls` from a nested dict; unknown keys are rejected with one line naming them.

    `base` (an instance) supplies the values `data` leaves out (default: the schema defaults).
    """
    options = base if base is not None else cls()
    _merge(options, data, source, ())
    return validate(options, source)


def _merge(options, data, source, path):
    if not isinstance(data, dict):
        where = ".".join(path) or "options"
        raise ChrommError(f"{source}: {where} must be a JSON object, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(options)}
    for key, value in data.items():
        if key not in names:
            where = ".".join(path + (str(key),))
            raise ChrommError(f"{source}: unknown option '{where}' (known here: {', '.join(names)})")
        current = getattr(options, key)
        if is_group(current):
            _merge(current, value, source, path + (key,))
        else:
            setattr(options, key, value)


def read_config(cls, path, base=None):
    """Options from a JSON file (the `--config` of `fuse` and `reconstruct`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ChrommError(f"{path}: cannot read the options file ({exc.strerror})") from None
    except ValueError as exc:
        raise ChrommError(f"{path}: not valid JSON ({exc})") from None
    return from_dict(cls, data, path, base)


# ------------------------------------------------------------------------------ command line

def add_arguments(parser, cls, scopes=(JOB, SERVICE), config=True):
    """One flag per option of `cls` in `scopes`, plus `--config FILE`. Flags default to None (not
    given), so `from_args` can tell what the command line overrides."""
    import argparse

    if config:
        parser.add_argument("--config", metavar="FILE", help="JSON file of options (the layout of a take's "
                            "meta['options']); flags given as well override it")
    for leaf in leaves(cls, scopes):
        if leaf.type in (list, dict):
            continue  # lists (offsets) and documents (cameras) take a command-specific syntax
        kwargs = dict(dest=leaf.key, default=None,
                      help=argparse.SUPPRESS if leaf.meta["developer"] else leaf.describe())
        if leaf.type is bool:
            parser.add_argument(leaf.flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            parser.add_argument(leaf.flag, type=leaf.type, metavar=leaf.meta["unit"].upper().replace("/", "_")
                                or leaf.type.__name__.upper(), **kwargs)


def from_args(cls, args, scopes=(JOB, SERVICE), **given):
    """`cls` from `--config` (if any), then every flag given on the command line, then `given`."""
    options = read_config(cls, args.config) if getattr(args, "config", None) else cls()
    for leaf in leaves(cls):
        if leaf.key in given:
            value = given[leaf.key]
        elif leaf.meta["scope"] in scopes:
            value = getattr(args, leaf.key, None)
        else:
            continue
        if value is not None:
            leaf.set(options, check_value(leaf, value, ""))
    return validate(options)


def service_arguments(options):
    """The `serve` flags that carry the service-scope options (the add-on's local backend)."""
    out = []
    for leaf in leaves(type(options), (SERVICE,)):
        value = leaf.get(options)
        if value is not None and value != leaf.default:
            out += [leaf.flag, str(value)]
    return out


# ------------------------------------------------------------------------------ HTTP models

_MODELS = {}


def request_model(cls, name=None, scopes=(JOB,)):
    """A pydantic model of the `scopes` options of `cls`, nested like the dataclasses (so a request
    body is the same JSON as a `--config` file); every field optional, unknown keys rejected."""
    import pydantic

    cache_key = (cls, tuple(scopes))
    if cache_key in _MODELS:
        return _MODELS[cache_key]
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        m = f.metadata
        if m.get("scope", JOB) not in scopes:
            continue
        if m.get("group"):
            sub = request_model(hints[f.name], scopes=scopes)
            fields[f.name] = (typing.Optional[sub], pydantic.Field(None, description=m["help"]))
            continue
        kind = _base_type(hints[f.name])
        if kind is list:
            kind = typing.List[typing.Union[str, float]]
        elif kind is str and m.get("choices") and not m.get("accept"):
            kind = typing.Literal[tuple(m["choices"])]
        limits = {}
        if m.get("min") is not None:
            limits["gt" if m.get("gt") else "ge"] = m["min"]
        if m.get("max") is not None:
            limits["le"] = m["max"]
        leaf = Leaf((f.name,), f.name, f, _base_type(hints[f.name]), False)
        fields[f.name] = (typing.Optional[kind], pydantic.Field(None, description=leaf.describe(), **limits))
    model = pydantic.create_model(name or f"{cls.__name__}Request",
                                  __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    _MODELS[cache_key] = model
    return model


def strip_none(data):
    """A request body without the options left out (None), nested groups included."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            value = strip_none(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out


# ------------------------------------------------------------------------------ docs

def markdown_table(cls=None):
    """The options as a Markdown table (docs/options.md is this output; a test keeps it so)."""
    cls = cls or ReconstructOptions
    rows = ["| option (JSON path) | flag | scope | unit | range | default | meaning |", "|---|---|---|---|---|---|---|"]
    for leaf in leaves(cls):
        m = leaf.meta
        if m["developer"] or m["scope"] == INPUT:
            continue
        if leaf.optional:
            default = f"*{m['auto']}*"
        else:
            default = f"`{json.dumps(leaf.default)}`"
        meaning = m["help"] + ("; " + "; ".join(f"`{k}`: {v}" for k, v in m["choices"].items())
                               if m["choices"] else "")
        rows.append(f"| `{'.'.join(leaf.path)}` | `{leaf.flag}` | {m['scope']} | {m['unit']} | "
                    f"{range_text(m)} | {default} | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
