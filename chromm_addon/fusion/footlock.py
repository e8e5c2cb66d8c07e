"""Foot contact and foot locking: planted feet that do not slide, on the floor, without pops.

Per person and foot (left, right), after temporal filtering:

1. **Contact** from the foot's height above the floor and its speed, with hysteresis: a foot
   enters contact when its lowest joint is within `contact_height_m` of its flat-foot height and
   it moves slower than `contact_speed_mps` (its displacement over +-`speed_baseline_s`, so
   frame-to-frame noise does not count as motion); it leaves when it rises above `release_height_m`
   or moves faster than `release_speed_mps`. Contacts shorter than `min_contact_s` are dropped
   and breaks shorter than `min_break_s` filled.
2. **Lock**: during a contact the foot is held flat on the floor (sole at z = 0) at one place
   and heading: the median of its ankle positions over the contact, its mean heading. The leg
   is solved onto it by analytic two-bone IK (`body.ik.solve_leg`: hip, knee, ankle only).
3. **Blend**: the lock weight ramps in and out over `blend_s` on both sides of a contact
   (smootherstep); the foot's target moves from where it was to the lock by that weight (and its
   orientation along the geodesic), and the leg's solved local rotations are slerped from the
   filtered pose by the same weight (the solve makes the knee a pure hinge, which the filtered
   pose need not be), so nothing pops. Where the ramps of two contacts overlap (a short swing)
   their weights are scaled to sum to at most 1 and the target is their blend. Then any foot
   that still dips below the floor is lifted onto it the same way (weight rising over 5 mm).
4. **Root**: where a locked foot lies beyond 98 % of the leg's reach the root is lowered by what
   is missing, through a smooth upper envelope over `blend_s` (the head follows).

Everything else (spine, arms, hands, face, root rotation) is left as it was.
"""

import dataclasses

import numpy as np

from ..body.ik import LEGS, flat_foot_rotation, leg_kinematics, leg_reach, solve_leg
from ..geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from ..options import FootLockOptions
from .smoothing import lower_envelope, segments

LEG_JOINTS = tuple(j for leg in LEGS for j in leg[:3])


def _steps(seconds, fps):
    return max(1, int(round(seconds * fps)))


def _runs(mask):
    return segments(np.asarray(mask, dtype=bool))


def hysteresis(low_enter, high_leave):
    """(T,) bool state, two-sided (offline): every run of frames where `high_leave` does not
    hold that contains at least one `low_enter` frame. A causal hysteresis (on at the first
    enter, off at the first leave) holds the loose bound only after the strict one was met, so
    it is late by however long the filtered foot takes to slow below the strict bound; here the
    loose bound applies on both sides of a contact, before it as after it."""
    low_enter, high_leave = np.asarray(low_enter, bool), np.asarray(high_leave, bool)
    state = np.zeros(len(low_enter), dtype=bool)
    for start, stop in _runs(~high_leave):
        if low_enter[start:stop].any():
            state[start:stop] = True
    return state


def clean_runs(mask, min_on, min_off):
    """Fill breaks shorter than `min_off` steps between runs, then drop runs under `min_on`."""
    mask = np.array(mask, dtype=bool)
    runs = _runs(mask)
    for (_, stop), (start, _) in zip(runs[:-1], runs[1:]):
        if start - stop < min_off:
            mask[stop:start] = True
    for start, stop in _runs(mask):
        if stop - start < min_on:
            mask[start:stop] = False
    return mask


def flat_heights(rest, clearance):
    """(..., 2, 2) heights of (ankle, foot) joints above the sole for a flat foot, per side:
    the lowest foot joint stands `clearance` above the sole."""
    ankle = rest[..., [LEGS[0][2], LEGS[1][2]], 1]
    foot = rest[..., [LEGS[0][3], LEGS[1][3]], 1]
    lowest = np.minimum(ankle, foot)
    return np.stack([ankle - lowest, foot - lowest], -1) + clearance


def detect_contact(joints, valid, rest, clearance, fps, opts):
    """(T, 2) bool foot contact of one person. joints (T, 55, 3) world, rest (T, 55, 3)."""
    heights = flat_heights(rest, clearance)                          # (T, 2, 2)
    feet = joints[:, [[LEGS[s][2], LEGS[s][3]] for s in (0, 1)]]      # (T, 2, 2, 3)
    above = (feet[..., 2] - heights).min(-1)                           # (T, 2)
    centre = feet.mean(2)                                              # (T, 2, 3)
    contact = np.zeros((len(joints), 2), dtype=bool)
    for start, stop in segments(valid):
        if stop - start < 2:
            continue
        speed = _speed(centre[start:stop], fps, _steps(opts.speed_baseline_s, fps))
        for s in (0, 1):
            enter = (above[start:stop, s] < opts.contact_height_m) & (speed[:, s] < opts.contact_speed_mps)
            leave = (above[start:stop, s] > opts.release_height_m) | (speed[:, s] > opts.release_speed_mps)
            held = clean_runs(hysteresis(enter, leave), _steps(opts.min_contact_s, fps),
                              _steps(opts.min_break_s, fps))
            held = split_travelling(held, centre[start:stop, s, :2], speed[:, s], opts.max_travel_m)
            contact[start:stop, s] = clean_runs(held, _steps(opts.min_contact_s, fps), 0)
    return contact


def split_travelling(mask, xy, speed, max_travel):
    """A planted foot stays in one place: a run of `mask` along which the foot's (T, 2) floor
    position `xy` strays further than `max_travel` from its median is split at its fastest
    frame, and so on until every run stays put (a heavily smoothed walk can read as one long
    contact over several steps, whose one lock place would drag the legs and the root)."""
    mask = np.array(mask, dtype=bool)
    todo = _runs(mask)
    while todo:
        a, b = todo.pop()
        stray = np.linalg.norm(xy[a:b] - np.median(xy[a:b], axis=0), axis=-1).max(initial=0.0)
        if stray <= max_travel or b - a < 3:
            continue
        cut = a + 1 + int(np.argmax(speed[a + 1:b - 1]))
        mask[cut] = False
        todo += [(a, cut), (cut + 1, b)]
    return mask


def _speed(x, fps, k):
    """(T, ...) speed of (T, ..., 3) positions over +-k steps (fewer at the ends)."""
    t = np.arange(len(x))
    lo, hi = np.maximum(t - k, 0), np.minimum(t + k, len(x) - 1)
    span = np.maximum(hi - lo, 1).reshape((-1,) + (1,) * (x.ndim - 2))
    return np.linalg.norm(x[hi] - x[lo], axis=-1) * fps / span


def _smootherstep(u):
    return u * u * u * (u * (6 * u - 15) + 10)


def _lock_weights(contact, blend):
    """Per frame: (previous run, next run) indices into the contact runs (-1: none) and their
    weights: 1 inside a run; outside, smootherstep ramps over `blend` steps from each side,
    scaled down where two ramps overlap so that they never sum above 1."""
    runs = np.array(_runs(contact), dtype=np.int64).reshape(-1, 2)
    T = len(contact)
    t = np.arange(T)
    prev = np.searchsorted(runs[:, 0], t, side="right") - 1   # last run starting at or before t
    inside = (prev >= 0) & (t < runs[np.maximum(prev, 0), 1])
    nxt = np.where(inside, prev, prev + 1)
    nxt = np.where(nxt < len(runs), nxt, -1)
    ramp = lambda d: _smootherstep(np.clip(1.0 - d / (blend + 1.0), 0.0, 1.0))  # noqa: E731
    a = np.where(prev >= 0, ramp(t - (runs[np.maximum(prev, 0), 1] - 1)), 0.0)
    b = np.where(nxt >= 0, ramp(runs[np.maximum(nxt, 0), 0] - t), 0.0)
    a, b = np.where(inside, 1.0, a), np.where(inside, 0.0, b)
    total = a + b
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-12), 1.0)
    return prev, nxt, a * scale, b * scale


def _slerp(r0, r1, w):
    """Rotations from r0 (w = 0) to r1 (w = 1) along the geodesic; w (...,)."""
    delta = matrix_to_axis_angle(np.swapaxes(r0, -1, -2) @ r1)
    return r0 @ axis_angle_to_matrix(delta * np.asarray(w)[..., None])


def lock_person(rot, rest, transl, valid, contact, clearance, fps, opts):
    """Locked local rotations (T, 55, 3, 3) and transl (T, 3) of one person.

    rot (T, 55, 3, 3) local rotations, rest (T, 55, 3), transl (T, 3), valid (T,) and
    contact (T, 2) bool. Only the leg joints and the root height change."""
    rot, transl = np.array(rot, dtype=np.float64), np.array(transl, dtype=np.float64)
    T = len(rot)
    if T == 0:
        return rot, transl
    g_rot, g_pos = leg_kinematics(rot, rest)
    heights = flat_heights(rest, clearance)
    blend = _steps(opts.blend_s, fps)
    targets = np.zeros((2, T, 3))
    foot_rots = np.zeros((2, T, 3, 3))
    weights = np.zeros((2, T))
    for s in (0, 1):
        _, _, ankle, _ = LEGS[s]
        ankle_pos = g_pos[:, ankle] + transl
        foot_rot = g_rot[:, ankle]
        targets[s], foot_rots[s] = ankle_pos, foot_rot
        for start, stop in segments(valid):
            c = contact[start:stop, s]
            runs = _runs(c)
            if not runs:
                continue
            places, turns = [], []
            for a, b in runs:
                forward = foot_rot[start + a:start + b, :2, 2]
                place = np.median(ankle_pos[start + a:start + b], axis=0)
                place[2] = np.median(heights[start + a:start + b, s, 0])
                places.append(place)
                turns.append(flat_foot_rotation(np.arctan2(forward[:, 1].mean(), forward[:, 0].mean())))
            places, turns = np.array(places), np.array(turns)
            prev, nxt, wa, wb = _lock_weights(c, blend)
            here = slice(start, stop)
            pa, pb = places[np.maximum(prev, 0)], places[np.maximum(nxt, 0)]
            targets[s, here] = (ankle_pos[here] + wa[:, None] * (pa - ankle_pos[here])
                                + wb[:, None] * (pb - ankle_pos[here]))
            w = wa + wb
            between = _slerp(turns[np.maximum(prev, 0)], turns[np.maximum(nxt, 0)],
                             np.where(w > 0, wb / np.maximum(w, 1e-12), 0.0))
            foot_rots[s, here] = _slerp(foot_rot[here], between, w)
            weights[s, here] = w

    # the root comes down where a locked foot is out of reach
    hips = g_pos[:, [LEGS[0][0], LEGS[1][0]]] + transl[:, None]
    need = np.zeros(T)
    for s in (0, 1):
        reach = leg_reach(rest, s, opts.reach_fraction)
        horizontal = np.sum((hips[:, s, :2] - targets[s, :, :2]) ** 2, -1)
        highest = targets[s, :, 2] + np.sqrt(np.clip(reach**2 - horizontal, 0.0, None))
        need = np.maximum(need, np.where(weights[s] > 0, hips[:, s, 2] - highest, 0.0))
    if need.max(initial=0.0) > 0:
        transl[:, 2] -= -lower_envelope(-need, blend)

    locked = rot.copy()
    for s in (0, 1):
        todo = weights[s] > 0
        if todo.any():
            joints = list(LEGS[s][:3])
            solved = solve_leg(locked[todo], rest[todo], transl[todo], s, targets[s, todo],
                               foot_rots[s, todo])
            locked[np.flatnonzero(todo)[:, None], joints] = _slerp(
                rot[todo][:, joints], solved[:, joints], weights[s, todo][:, None])
    return _lift_above_floor(locked, rest, transl, valid, heights), transl


def _lift_above_floor(rot, rest, transl, valid, heights, soft_m=0.005):
    """Legs whose ankle or foot joint dips below its flat-foot height are lifted onto the floor
    (ankle target raised by the dip, foot orientation kept), blended in over `soft_m` of dip."""
    for s in (0, 1):
        _, _, ankle, foot = LEGS[s]
        g_rot, g_pos = leg_kinematics(rot, rest)
        pos = g_pos + transl[:, None]
        dip = np.maximum(heights[:, s, 0] - pos[:, ankle, 2], heights[:, s, 1] - pos[:, foot, 2])
        todo = (dip > 0) & valid
        if not todo.any():
            continue
        target = pos[todo, ankle] + np.stack([0 * dip[todo], 0 * dip[todo], dip[todo]], -1)
        solved = solve_leg(rot[todo], rest[todo], transl[todo], s, target, g_rot[todo, ankle])
        joints = list(LEGS[s][:3])
        w = np.clip(dip[todo] / soft_m, 0.0, 1.0)[:, None]
        rot[np.flatnonzero(todo)[:, None], joints] = _slerp(rot[todo][:, joints], solved[:, joints], w)
    return rot


def lock_feet(rot, rest, transl, valid, clearance, fps, opts=None, speed_scale=None):
    """Foot contact and locking for every person.

    rot (P, T, 55, 3, 3), rest (P, T, 55, 3), transl (P, T, 3), valid (P, T), clearance (P,)
    height of the lowest foot joint above the sole; speed_scale (P,) or None multiplies the
    contact speeds (noisier people). Returns (rot, transl, contact (P, T, 2))."""
    opts = opts or FootLockOptions()
    rot, transl = np.array(rot, dtype=np.float64), np.array(transl, dtype=np.float64)
    contact = np.zeros(valid.shape + (2,), dtype=bool)
    for p in range(len(rot)):
        _, pos = leg_kinematics(rot[p], rest[p])
        joints = pos + transl[p][:, None]
        scale = 1.0 if speed_scale is None else float(speed_scale[p])
        person_opts = dataclasses.replace(opts, contact_speed_mps=opts.contact_speed_mps * scale,
                                          release_speed_mps=opts.release_speed_mps * scale)
        contact[p] = detect_contact(joints, valid[p], rest[p], clearance[p], fps, person_opts)
        rot[p], transl[p] = lock_person(rot[p], rest[p], transl[p], valid[p], contact[p],
                                        clearance[p], fps, opts)
    return rot, transl, contact
