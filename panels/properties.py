"""Scene settings of the "Reconstruct from views" panel (saved with the .blend).

The reconstruction options are generated from the options schema (`chromm_addon.options`):
`option_properties` makes one property per option the add-on sets, and `job_options` /
`service_options` map the settings back to the schema. Nothing here names a single option except
`ELSEWHERE` (options set from the clip list and the preferences).
"""

import bpy

from ..chromm_addon.options import JOB, SERVICE, ReconstructOptions, leaves

# Options the add-on sets from something other than a generated scene property.
ELSEWHERE = {"offsets": "each clip's Offset", "weights": "Preferences: Network weights",
             "smplx": "Preferences: SMPL-X model", "cameras": "the Cameras file (cameras_file) and each clip's Known camera"}
UNITS = {"s": {"unit": "TIME_ABSOLUTE"}, "m": {"unit": "LENGTH"}, "rad": {"subtype": "ANGLE"}}


def addon_leaves(scopes=(JOB, SERVICE)):
    """The schema options that get a generated scene property."""
    return [leaf for leaf in leaves(ReconstructOptions, scopes)
            if not leaf.meta["developer"] and leaf.key not in ELSEWHERE]


def _label(leaf):
    return leaf.meta["label"] or leaf.key.replace("_", " ").capitalize()


def _option_property(leaf):
    """(annotations) the bpy properties of one option."""
    m, props = leaf.meta, bpy.props
    name, description = _label(leaf), leaf.describe()
    if m["presets"]:
        items = [(key, key.title(), text) for key, (value, text) in m["presets"].items()]
        default = next(key for key, (value, _) in m["presets"].items() if value == leaf.default)
        return {leaf.key: props.EnumProperty(name=name, items=items, default=default, description=m["help"])}
    if m["choices"]:
        items = [(key, key, text) for key, text in m["choices"].items()]
        return {leaf.key: props.EnumProperty(name=name, items=items, default=leaf.default, description=m["help"])}
    if leaf.type is bool:
        return {leaf.key: props.BoolProperty(name=name, default=leaf.default, description=description)}
    kwargs = dict(UNITS.get(m["unit"], {})) if leaf.type is float else {}
    lo, hi = m["min"], m["max"]
    out = {}
    if leaf.optional:
        if m["toggle"]:
            toggle, toggle_label = m["toggle"]
            out[toggle] = props.BoolProperty(name=toggle_label, default=False)
            default = m["ui_default"] if m["ui_default"] is not None else (lo or 0)
        else:  # 0 stands for "not set" (the option's range excludes it)
            assert lo is not None and (lo > 0 or m["gt"]), leaf.key
            description += " (0: default)"
            default, lo = 0, 0
    else:
        default = leaf.default
    if lo is not None:
        kwargs["min"] = lo
    if hi is not None:
        kwargs["max"] = hi
    prop = props.FloatProperty if leaf.type is float else props.IntProperty
    out[leaf.key] = prop(name=name, default=default, description=description, **kwargs)
    return out


def option_properties(scopes=(JOB, SERVICE)):
    """Annotations of every generated option property."""
    out = {}
    for leaf in addon_leaves(scopes):
        out.update(_option_property(leaf))
    return out


def _setting(settings, leaf):
    """The option's value from the scene settings (None: not set)."""
    m = leaf.meta
    value = getattr(settings, leaf.key)
    if m["presets"]:
        return m["presets"][value][0]
    if leaf.optional and m["toggle"]:
        return value if getattr(settings, m["toggle"][0]) else None
    if leaf.optional:
        return value or None
    return value


def typed_camera(clip):
    """The camera knowledge typed in for one clip item: an entry of the camera document, or None."""
    from ..chromm_addon.backend.video import view_name
    from ..chromm_addon.io.cameras import LENS_KEYS, typed_entry

    intrinsics = lens = pose = None
    if clip.use_intrinsics:
        intrinsics = dict(fx=clip.fx, fy=clip.fy, cx=clip.cx, cy=clip.cy, width=clip.image_width,
                          height=clip.image_height)
    if clip.lens != "NONE":
        model = clip.lens.lower()
        lens = dict(model=model, **{k: getattr(clip, k) for k in LENS_KEYS[model]})
    if clip.use_pose:
        pose = dict(location=tuple(clip.location), rotation=tuple(clip.rotation))
    return typed_entry(view_name(bpy.path.abspath(clip.path) or clip.name), intrinsics, lens, pose)


def read_cameras_file(path, prefs=None):
    """A calibration file of any format the backend reads -> our camera document. Blender's Python
    has no OpenCV: OpenCV / EasyMocap files are then converted by the local backend's environment
    (`python -m chromm_addon cameras`), the same readers; without one, a one-line error says how."""
    import os

    from ..chromm_addon.io.cameras import read_camera_file

    try:
        import cv2  # noqa: F401
    except ImportError:
        ours = path.lower().endswith(".json")
        env = prefs.backend_env if prefs is not None and prefs.backend_mode == "LOCAL" else ""
        if not ours and env and os.path.isfile(path):
            from ..chromm_addon.client.local_backend import convert_cameras

            return convert_cameras(env, path)
    return read_camera_file(path)


def job_options(settings, clips, prefs=None, notes=None):
    """The service's job options (nested like the schema) from the scene settings and clip items.
    `notes` (a list) receives what was assumed: typed-in cameras replacing the file's.

    Offsets are sent when any clip has one (typed, from the Sequencer or from Sync Clips); all
    zero means "not synchronised yet", and the backend's sync stage finds them."""
    from ..chromm_addon.backend.video import view_name
    from ..chromm_addon.io.cameras import with_typed

    body = {"offsets": [f"{c.offset}s" for c in clips]} if any(c.offset for c in clips) else {}
    doc = read_cameras_file(bpy.path.abspath(settings.cameras_file), prefs) if settings.cameras_file else None
    names = [view_name(bpy.path.abspath(c.path) or c.name) for c in clips]
    doc, said = with_typed(doc, [typed_camera(c) for c in clips], names)
    if doc is not None:
        body["cameras"] = doc
    if notes is not None:
        notes.extend(said)
    for leaf in addon_leaves((JOB,)):
        value = _setting(settings, leaf)
        if value is None:
            continue
        node = body
        for name in leaf.path[:-1]:
            node = node.setdefault(name, {})
        node[leaf.path[-1]] = value
    return body


def service_options(settings, prefs):
    """The service-scope options (network, device, weights, smplx) the local backend starts with."""
    out = {leaf.key: _setting(settings, leaf) for leaf in addon_leaves((SERVICE,))}
    out["weights"] = bpy.path.abspath(prefs.weights_dir) if prefs.weights_dir else None
    out["smplx"] = bpy.path.abspath(prefs.smplx_model) if prefs.smplx_model else None
    return out


class CHROMM_PG_clip(bpy.types.PropertyGroup):
    """One input clip: a movie file, with its own start offset."""

    # `name` (from PropertyGroup) is the label shown in the list.
    path: bpy.props.StringProperty(name="File", subtype="FILE_PATH")
    enabled: bpy.props.BoolProperty(name="Use", default=True, description="Send this clip")
    offset: bpy.props.FloatProperty(
        name="Offset", unit="TIME_ABSOLUTE", default=0.0, min=0.0,
        description="Time in this clip (seconds) that lines up with the other clips' zero")
    movieclip: bpy.props.PointerProperty(type=bpy.types.MovieClip, name="Movie clip")
    sync_confidence: bpy.props.FloatProperty(
        name="Sync confidence", default=-1.0, min=-1.0, max=1.0,
        description="Confidence of the offset Sync Clips found (0 to 1; -1: not synced)")
    # Camera knowledge typed in (docs/cameras.md); it wins over the Cameras file for this clip.
    show_camera: bpy.props.BoolProperty(name="Known camera", default=False)
    use_intrinsics: bpy.props.BoolProperty(name="Intrinsics", default=False,
                                           description="Focal lengths and principal point in pixels are known")
    fx: bpy.props.FloatProperty(name="fx", default=1000.0, min=0.0, description="Focal length in pixels (x)")
    fy: bpy.props.FloatProperty(name="fy", default=1000.0, min=0.0, description="Focal length in pixels (y)")
    cx: bpy.props.FloatProperty(name="cx", default=959.5,
                                description="Principal point x in pixels (top-left pixel's centre is 0)")
    cy: bpy.props.FloatProperty(name="cy", default=539.5,
                                description="Principal point y in pixels (top-left pixel's centre is 0)")
    image_width: bpy.props.IntProperty(name="Width", default=1920, min=1,
                                       description="Image width the intrinsics are in (scaled to the clip)")
    image_height: bpy.props.IntProperty(name="Height", default=1080, min=1,
                                        description="Image height the intrinsics are in (scaled to the clip)")
    lens: bpy.props.EnumProperty(name="Lens", default="NONE", items=[
        ("NONE", "None", "No distortion (or unknown)"),
        ("PINHOLE", "OpenCV pinhole", "OpenCV's pinhole model: k1 k2 p1 p2 k3 k4 k5 k6"),
        ("FISHEYE", "Fisheye", "OpenCV's fisheye model: k1 k2 k3 k4")])
    k1: bpy.props.FloatProperty(name="k1", default=0.0, precision=5)
    k2: bpy.props.FloatProperty(name="k2", default=0.0, precision=5)
    k3: bpy.props.FloatProperty(name="k3", default=0.0, precision=5)
    k4: bpy.props.FloatProperty(name="k4", default=0.0, precision=5)
    k5: bpy.props.FloatProperty(name="k5", default=0.0, precision=5)
    k6: bpy.props.FloatProperty(name="k6", default=0.0, precision=5)
    p1: bpy.props.FloatProperty(name="p1", default=0.0, precision=5)
    p2: bpy.props.FloatProperty(name="p2", default=0.0, precision=5)
    use_pose: bpy.props.BoolProperty(name="Pose", default=False,
                                     description="Where the camera is (camera-to-world, metres)")
    location: bpy.props.FloatVectorProperty(name="Location", size=3, subtype="TRANSLATION", unit="LENGTH",
                                            description="Camera centre in the world, metres")
    rotation: bpy.props.FloatVectorProperty(
        name="Rotation", size=3, subtype="EULER",
        description="Camera-to-world rotation, XYZ Euler, of OpenCV camera axes (x right, y down, z forward)")


class CHROMM_PG_settings(bpy.types.PropertyGroup):
    clips: bpy.props.CollectionProperty(type=CHROMM_PG_clip)
    active_clip: bpy.props.IntProperty(name="Active clip")
    show_fusion: bpy.props.BoolProperty(name="Fusion options", default=False)
    replace_previous: bpy.props.BoolProperty(
        name="Replace previous result", default=False,
        description="Remove the last reconstruction's collection before adding the new one")
    cameras_file: bpy.props.StringProperty(
        name="Cameras", subtype="FILE_PATH",
        description="Known cameras of the clips: a camera document (.json, see docs/cameras.md; "
                    "`python -m chromm_addon cameras` converts OpenCV and EasyMocap calibrations). "
                    "Intrinsics, lens distortion (undistorted before the network) and poses (the take "
                    "keeps their frame)")
    last_take: bpy.props.PointerProperty(type=bpy.types.Collection, name="Last result")
    summary: bpy.props.StringProperty(name="Summary")
    retarget_target: bpy.props.PointerProperty(
        type=bpy.types.Object, name="Target rig", poll=lambda self, obj: obj.type == "ARMATURE",
        description="A Rigify- or Mixamo-named armature to bake the active person onto")


CHROMM_PG_settings.__annotations__.update(option_properties())

CLASSES = (CHROMM_PG_clip, CHROMM_PG_settings)


def register_extra():
    bpy.types.Scene.chromm = bpy.props.PointerProperty(type=CHROMM_PG_settings)


def unregister_extra():
    del bpy.types.Scene.chromm
