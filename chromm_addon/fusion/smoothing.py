"""Optional temporal smoothing without lag: local quadratic regression, centred and zero-phase.

Each timestep's value is the value at that timestep of a quadratic fitted, with Gaussian weights,
to the samples within `half_window` steps on both sides. Symmetric in the interior (no phase lag),
exact for constant-acceleration motion, and at the ends of a segment the fit uses the samples on
one side only, so nothing is pulled towards a padded value. Rotations are smoothed as
sign-continuous quaternions and renormalised (the chordal version of the same filter). Smoothing
never crosses a gap in a person's track.
"""

import numpy as np

from ..geometry.rotations import make_sign_continuous, matrix_to_quaternion, quaternion_to_matrix


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


def smooth_values(values, valid, half_window):
    """Smooth (T, ...) values along time within each valid segment; others unchanged."""
    out = np.array(values, dtype=np.float64)
    cache = {}
    for start, stop in segments(valid):
        n = stop - start
        if n < 3:
            continue
        if n not in cache:
            cache[n] = smoothing_weights(n, half_window)
        seg = out[start:stop].reshape(n, -1)
        out[start:stop] = _apply(cache[n], seg).reshape(out[start:stop].shape)
    return out


def smooth_rotations(rot, valid, half_window):
    """Smooth (T, ..., 3, 3) rotations along time within each valid segment."""
    quat = matrix_to_quaternion(rot)
    for start, stop in segments(valid):
        quat[start:stop] = make_sign_continuous(quat[start:stop], axis=0)
    quat = smooth_values(quat, valid, half_window)
    return quaternion_to_matrix(quat)
