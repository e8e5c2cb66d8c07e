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
             "smplx": "Preferences: SMPL-X model", "cameras": "the Cameras file (cameras_file)"}
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


def job_options(settings, clips):
    """The service's job options (nested like the schema) from the scene settings and clip items."""
    body = {"offsets": [f"{c.offset}s" for c in clips]}
    if settings.cameras_file:     # our camera document (ChrommError for another format, said in one line)
        from ..chromm_addon.io.cameras import read_camera_file

        body["cameras"] = read_camera_file(bpy.path.abspath(settings.cameras_file))
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
