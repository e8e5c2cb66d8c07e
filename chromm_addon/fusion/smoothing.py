"""Temporal filtering: local quadratic regression, centred and zero-phase (the default), and the
One Euro filter (causal, for comparison); people and cameras.

Each timestep's value is the value at that timestep of a quadratic fitted, with Gaussian weights,
to the samples within `half_window` steps on both sides. Symmetric in the interior (no phase lag),
exact for constant-acceleration motion, and at the ends of a segment the fit uses the samples on
one side only, so nothing is pulled towards a padded value. Rotations are smoothed as
sign-continuous quaternions and renormalised (the chordal version of the same filter). Smoothing
never crosses a gap in a person's track.

The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) is an adaptive first-order low-pass
whose cutoff rises with speed; it is causal (made for live input) and so lags. It is here so the
choice of the default is measured (docs/test-time-modules.md, "Temporal filtering").

Cameras: a view whose (smoothed) centre stays within `static_m` of its mean and whose rotation
stays within `static_deg` of its mean over the whole take stood on a tripod; it is written as
one constant pose (mean centre, Karcher mean rotation). Other cameras are smoothed like people.
"""

import numpy as np

from ..geometry.rotations import (make_sign_continuous, matrix_to_quaternion, mean_rotation,
                                  quaternion_to_matrix, rotation_angle)

FILTERS = ("quadratic", "one_euro")


def _row(offsets, sigma, degree):
    """Weights on samples at `offsets` (relative timesteps) giving the local fit's value at 0."""
    w = np.exp(-0.5 * (offsets / sigma) ** 2)
    design = np.vander(offsets, min(degree, len(offsets) - 1) + 1, increasing=True)
    wx = design.T * w
    return np.linalg.solve(wx @ design, wx)[0]


def smoothing_weights(length, half_window, degree=2):
    """(length, 2 h + 1) table: smoothed[i] = sum_j table[i, j] * samples[i + j - h].

    Entries that would read outside the segment are zero; only the first and last h rows differ
    from the interior kernel.
    """
    h = min(half_window, max(length - 1, 0))
    sigma = max(half_window / 2.0, 0.5)
    table = np.zeros((length, 2 * h + 1))
    offsets = np.arange(-h, h + 1, dtype=np.float64)
    interior = _row(offsets, sigma, degree)
    for i in range(length):
        lo, hi = max(0, i - h), min(length, i + h + 1)
        if hi - lo == 2 * h + 1:
            table[i] = interior
        else:
            table[i, lo - i + h:hi - i + h] = _row(np.arange(lo, hi, dtype=np.float64) - i, sigma, degree)
    return table


def smoothing_matrix(length, half_window, degree=2):
    """The same filter as a dense (length, length) matrix S, smoothed = S @ samples."""
    table = smoothing_weights(length, half_window, degree)
    h = (table.shape[1] - 1) // 2
    s = np.zeros((length, length))
    for j in range(table.shape[1]):
        rows = np.arange(max(0, h - j), min(length, length + h - j))
        s[rows, rows + j - h] = table[rows, j]
    return s


def _apply(table, samples):
    """Apply a `smoothing_weights` table to (L, F) samples (a few vectorised multiply-adds)."""
    n, width = table.shape
    h = (width - 1) // 2
    padded = np.zeros((n + 2 * h,) + samples.shape[1:])
    padded[h:h + n] = samples
    out = np.zeros_like(samples)
    for j in range(width):
        out += table[:, j, None] * padded[j:j + n]
    return out


def segments(valid):
    """(start, stop) of each run of True in a (T,) mask."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def bridge_gaps(valid, max_gap):
    """(T,) mask: `valid` with gaps of at most `max_gap` steps between two valid runs filled."""
    span = np.array(valid, dtype=bool)
    runs = segments(span)
    for (_, stop), (start, _) in zip(runs[:-1], runs[1:]):
        if start - stop <= max_gap:
            span[stop:start] = True
    return span


def masked_smoothing_weights(present, half_window, degree=2):
    """`smoothing_weights` for a segment with missing samples (`present` (L,) bool, False where
    a sample is missing): each row is the local fit to the present samples of its window only,
    so a missing sample neither pulls its neighbours nor stops the fit there; a missing
    timestep gets the fit's value (interpolated across the gap). Rows with fewer present
    samples than the fit needs fall back to a lower degree."""
    present = np.asarray(present, dtype=bool)
    length = len(present)
    h = min(half_window, max(length - 1, 0))
    sigma = max(half_window / 2.0, 0.5)
    offsets = np.arange(-h, h + 1, dtype=np.float64)
    idx = np.arange(length)[:, None] + np.arange(-h, h + 1)
    inside = (idx >= 0) & (idx < length)
    w = np.exp(-0.5 * (offsets / sigma) ** 2) * (inside & present[np.clip(idx, 0, length - 1)])
    table = np.zeros((length, 2 * h + 1))
    count = (w > 0).sum(1)
    for deg in range(degree, -1, -1):
        rows = (np.minimum(count - 1, degree) == deg) if deg < degree else count > degree
        if not rows.any():
            continue
        design = np.vander(offsets, deg + 1, increasing=True)          # (W, deg+1)
        wx = w[rows][:, None, :] * design.T[None]                        # (R, deg+1, W)
        table[rows] = np.linalg.solve(wx @ design, wx)[:, 0]
    return table


def smooth_values(values, valid, half_window, max_gap=0):
    """Smooth (T, ...) values along time within each valid segment; others unchanged.

    Gaps of at most `max_gap` steps between valid runs are bridged: the fit runs across them
    on the valid samples only (`masked_smoothing_weights`) and fills them; longer gaps end a
    segment (the default, 0: every gap does)."""
    out = np.array(values, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    cache = {}
    for start, stop in segments(bridge_gaps(valid, max_gap)):
        n = stop - start
        present = valid[start:stop]
        if present.sum() < 3:
            continue
        seg = out[start:stop].reshape(n, -1)
        if not present.all():   # fill the gaps with the fit to the present samples first
            seg[~present] = _apply(masked_smoothing_weights(present, half_window), seg)[~present]
        if n not in cache:
            cache[n] = smoothing_weights(n, half_window)
        out[start:stop] = _apply(cache[n], seg).reshape(out[start:stop].shape)
    return out


def _filter_quaternions(rot, valid, filter_fn):
    """Rotations (T, ..., 3, 3) -> sign-continuous quaternions -> filter_fn -> rotations."""
    quat = matrix_to_quaternion(rot)
    for start, stop in segments(valid):
        quat[start:stop] = make_sign_continuous(quat[start:stop], axis=0)
    return quaternion_to_matrix(filter_fn(quat))


def smooth_rotations(rot, valid, half_window, max_gap=0):
    """Smooth (T, ..., 3, 3) rotations along time within each valid segment (bridging gaps of
    at most `max_gap` steps, as `smooth_values`)."""
    return _filter_quaternions(rot, bridge_gaps(valid, max_gap),
                               lambda q: smooth_values(q, valid, half_window, max_gap))

def one_euro(values, valid, fps, min_cutoff_hz=1.0, beta=0.5, d_cutoff_hz=1.0):
    """One Euro filter of (T, ...) values along time within each valid segment (causal).

    The speed that raises the cutoff is the norm of the filtered derivative over all the
    features of a timestep (a body moves as one)."""
    out = np.array(values, dtype=np.float64)
    te = 1.0 / fps

    def alpha(cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    a_d = alpha(d_cutoff_hz)
    for start, stop in segments(valid):
        x = out[start:stop].reshape(stop - start, -1).copy()
        prev, dprev = x[0].copy(), np.zeros_like(x[0])
        for i in range(1, len(x)):
            dx = (x[i] - prev) / te
            dprev = a_d * dx + (1 - a_d) * dprev
            a = alpha(min_cutoff_hz + beta * np.linalg.norm(dprev) / np.sqrt(len(dprev)))
            prev = a * x[i] + (1 - a) * prev
            x[i] = prev
        out[start:stop] = x.reshape(out[start:stop].shape)
    return out


def filter_values(values, valid, fps, method="quadratic", window_s=0.15, max_gap_s=0.0, **one_euro_args):
    """Filter (T, ...) values along time with the named filter (see FILTERS); the quadratic one
    bridges gaps of at most `max_gap_s` (see `smooth_values`)."""
    if method == "one_euro":
        return one_euro(values, valid, fps, **one_euro_args)
    return smooth_values(values, valid, max(1, int(round(window_s * fps))), _gap_steps(max_gap_s, fps))


def filter_rotations(rot, valid, fps, method="quadratic", window_s=0.15, max_gap_s=0.0, **one_euro_args):
    """Filter (T, ..., 3, 3) rotations as sign-continuous quaternions, renormalised."""
    span = valid if method == "one_euro" else bridge_gaps(valid, _gap_steps(max_gap_s, fps))
    return _filter_quaternions(rot, span, lambda q: filter_values(q, valid, fps, method, window_s, max_gap_s,
                                                                  **one_euro_args))


def _gap_steps(seconds, fps):
    return int(round(seconds * fps))


def camera_trajectories(c2w, fps, window_s=0.5, static_m=0.03, static_deg=0.5, method="quadratic",
                        **one_euro_args):
    """(V, T, 4, 4) camera-to-world poses filtered over time, and (V,) bool: static views.

    A static view (tripod) gets one constant pose for the whole take; the others are filtered
    with `method` over `window_s` (centres as values, rotations as quaternions)."""
    c2w = np.array(c2w, dtype=np.float64)
    num_views, num_frames = c2w.shape[:2]
    static = np.zeros(num_views, dtype=bool)
    every = np.ones(num_frames, dtype=bool)
    for v in range(num_views):
        centre = filter_values(c2w[v, :, :3, 3], every, fps, "quadratic", window_s)
        rot = filter_rotations(c2w[v, :, :3, :3], every, fps, "quadratic", window_s)
        mean_centre, mean_rot = centre.mean(0), mean_rotation(rot)
        spread_m = np.linalg.norm(centre - mean_centre, axis=-1).max(initial=0.0)
        spread_deg = np.rad2deg(rotation_angle(np.swapaxes(rot, -1, -2) @ mean_rot)).max(initial=0.0)
        if spread_m <= static_m and spread_deg <= static_deg:
            static[v] = True
            c2w[v, :, :3, 3] = c2w[v, :, :3, 3].mean(0)
            c2w[v, :, :3, :3] = mean_rotation(c2w[v, :, :3, :3])
        elif method == "quadratic":
            c2w[v, :, :3, 3], c2w[v, :, :3, :3] = centre, rot
        else:
            c2w[v, :, :3, 3] = filter_values(c2w[v, :, :3, 3], every, fps, method, window_s, **one_euro_args)
            c2w[v, :, :3, :3] = filter_rotations(c2w[v, :, :3, :3], every, fps, method, window_s,
                                                 **one_euro_args)
    return c2w, static


def lower_envelope(x, radius):
    """A smooth curve never above `x`: a sliding minimum over +-radius, then a Gaussian filter
    truncated at that radius (each output averages minima of windows that all hold its sample)."""
    if radius < 1 or len(x) < 2:
        return x
    padded = np.concatenate([np.repeat(x[:1], radius), x, np.repeat(x[-1:], radius)])
    low = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).min(axis=-1)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / (radius / 3.0)) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(low[:1], radius), low, np.repeat(low[-1:], radius)])
    return np.convolve(padded, k, mode="valid")
