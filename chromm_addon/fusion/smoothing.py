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


def smoothing_matrix(length, half_window, degree=2):
    """(length, length) matrix S with smoothed = S @ samples."""
    s = np.zeros((length, length))
    sigma = max(half_window / 2.0, 0.5)
    for i in range(length):
        lo, hi = max(0, i - half_window), min(length, i + half_window + 1)
        x = np.arange(lo, hi, dtype=np.float64) - i
        w = np.exp(-0.5 * (x / sigma) ** 2)
        deg = min(degree, len(x) - 1)
        design = np.vander(x, deg + 1, increasing=True)
        wx = design.T * w
        s[i, lo:hi] = np.linalg.solve(wx @ design, wx)[0]
    return s


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
            cache[n] = smoothing_matrix(n, half_window)
        seg = out[start:stop].reshape(n, -1)
        out[start:stop] = (cache[n] @ seg).reshape(out[start:stop].shape)
    return out


def smooth_rotations(rot, valid, half_window):
    """Smooth (T, ..., 3, 3) rotations along time within each valid segment."""
    quat = matrix_to_quaternion(rot)
    for start, stop in segments(valid):
        quat[start:stop] = make_sign_continuous(quat[start:stop], axis=0)
    quat = smooth_values(quat, valid, half_window)
    return quaternion_to_matrix(quat)
