"""Minimum-cost bipartite assignment (Hungarian / shortest augmenting paths) in numpy.

Written here so the test-time modules need no scipy; the tests check it against
`scipy.optimize.linear_sum_assignment`.
"""

import numpy as np


def linear_sum_assignment(cost):
    """Rows and columns of a minimum-cost matching of a (n, m) cost matrix (min(n, m) pairs).

    Infinite entries are treated as forbidden only in that they are never preferred; callers
    gate the returned pairs themselves.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError("cost must be a 2-D matrix")
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    finite = np.isfinite(cost)
    if not finite.all():
        big = (np.abs(cost[finite]).max() if finite.any() else 0.0) * 2 * max(cost.shape) + 1e6
        cost = np.where(finite, cost, big)
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    row_of = np.zeros(m + 1, dtype=np.int64)  # 1-based row matched to column j; 0 = free
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = row_of[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[row_of[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    cols = np.flatnonzero(row_of[1:])
    rows = row_of[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)
