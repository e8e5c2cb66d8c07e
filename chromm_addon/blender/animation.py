"""Bulk keyframes: one action per animated data-block, every F-curve filled with foreach_set.

Blender 4.4+ actions are slotted (layer -> keyframe strip -> channelbag per slot) and the slot
must be assigned on the animation data or nothing plays; 4.2/4.3 only have `action.fcurves`.
Never `keyframe_insert`: it is two orders of magnitude slower (benchmarks/bench_build.py).
"""

import functools

import bpy
import numpy as np

SLOTTED = bpy.app.version >= (4, 4)
GROUP_NAME_ARG = bpy.app.version >= (5, 0)  # channelbag.fcurves.new(group_name=...) from 5.0
_INTERP = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items
LINEAR = _INTERP["LINEAR"].value
CONSTANT = _INTERP["CONSTANT"].value


class Channel:
    """One animated property: values (K,) over frames (K,), or several indices of a vector."""

    __slots__ = ("data_path", "index", "values", "group", "interpolation", "frames")

    def __init__(self, data_path, index, values, group="", interpolation=LINEAR, frames=None):
        self.data_path = data_path
        self.index = index
        self.values = values
        self.group = group
        self.interpolation = interpolation
        self.frames = frames


def vector_channels(data_path, values, group="", interpolation=LINEAR):
    """Channels for every component of a (K, C) array of a vector property."""
    values = np.asarray(values)
    return [Channel(data_path, i, values[:, i], group, interpolation) for i in range(values.shape[1])]


def animate(id_block, action_name, frames, channels, id_type="OBJECT"):
    """Create an action holding `channels` keyed at `frames` and assign it to `id_block`.

    `frames` (K,) are scene frame numbers; a channel may carry its own frames. Returns the action.
    """
    frames = np.asarray(frames, dtype=np.float32)
    # Interleaved (frame, value) pairs of all shared-frame channels in one array, built at once.
    shared = [ch for ch in channels if ch.frames is None]
    co = np.empty((len(shared), len(frames), 2), dtype=np.float32)
    co[:, :, 0] = frames
    if shared:
        co[:, :, 1] = np.stack([np.asarray(ch.values, dtype=np.float32) for ch in shared])
    co_of = {id(ch): co[i].ravel() for i, ch in enumerate(shared)}
    for ch in channels:
        if ch.frames is not None:
            own = np.empty((len(ch.frames), 2), dtype=np.float32)
            own[:, 0], own[:, 1] = ch.frames, ch.values
            co_of[id(ch)] = own.ravel()
    action = bpy.data.actions.new(action_name)
    slot = None
    if SLOTTED:
        slot = action.slots.new(id_type=id_type, name=id_block.name)
        strip = action.layers.new("Layer").strips.new(type="KEYFRAME")
        channelbag = strip.channelbag(slot, ensure=True)
        groups = {}

        def new_fcurve(ch):
            if GROUP_NAME_ARG:
                return channelbag.fcurves.new(ch.data_path, index=ch.index, group_name=ch.group)
            fc = channelbag.fcurves.new(ch.data_path, index=ch.index)
            if ch.group:
                if ch.group not in groups:
                    groups[ch.group] = channelbag.groups.new(ch.group)
                fc.group = groups[ch.group]
            return fc
    else:
        def new_fcurve(ch):
            return action.fcurves.new(ch.data_path, index=ch.index, action_group=ch.group)
    for ch in channels:
        _fill(new_fcurve(ch), co_of[id(ch)], ch.interpolation)
    anim = id_block.animation_data_create()
    anim.action = action
    if slot is not None:
        anim.action_slot = slot
    return action


def _fill(fcurve, co, interpolation):
    """Keys from interleaved float32 (frame, value) pairs, all at once."""
    count = len(co) // 2
    points = fcurve.keyframe_points
    points.add(count)
    points.foreach_set("co", co)
    points.foreach_set("interpolation", _interpolations(count, interpolation))
    # No fcurve.update(): keys arrive sorted, and LINEAR/CONSTANT curves never read their
    # handles (Blender recomputes them when a user edits the curve). It would cost ~40 % here.


@functools.lru_cache(maxsize=16)
def _interpolations(count, interpolation):
    return np.full(count, interpolation, dtype=np.int32)


def constant_steps(frames, values):
    """Reduce a per-frame step signal to the frames where it changes (for CONSTANT channels)."""
    frames = np.asarray(frames)
    values = np.asarray(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return frames[keep], values[keep]
