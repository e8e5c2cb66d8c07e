"""Cross-view person association at one timestep, from geometry only (no appearance).

Two detections from different views may be the same person when their world-frame head
positions, root orientations and body poses agree. Pair cost (dimensionless):

    cost = d / sigma_head + theta_root / sigma_root + phi_body / sigma_body

d the head distance (metres, after the first scale estimate), theta_root the geodesic angle
between world root orientations, phi_body the mean geodesic angle over the 21 body joints
(radians). A pair is admissible only under all three gates and when the views differ.
Clusters grow by agglomerative merging in order of average pair cost, and two clusters merge only
when every cross pair is admissible (complete-link gating): so a cluster never holds two
detections of one view, a person seen by one view stays a cluster of one, and missed or false
detections simply leave smaller clusters.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class AssociationOptions:
    head_gate_m: float = 0.5
    root_gate_rad: float = 1.0       # 57 degrees
    body_gate_rad: float = 0.6       # 34 degrees, mean over the body joints
    sigma_head_m: float = 0.15
    sigma_root_rad: float = 0.35
    sigma_body_rad: float = 0.25


def pair_costs(head, root, body, opts):
    """Cost and admissibility (n, n) of every pair of n detections of one timestep.

    head (n, 3) world, root (n, 3, 3) world root rotations, body (n, 21, 3, 3) body rotations.
    """
    d = np.linalg.norm(head[:, None] - head[None], axis=-1)
    tr_root = np.einsum("aij,bij->ab", root, root)
    theta = np.arccos(np.clip((tr_root - 1) / 2, -1.0, 1.0))
    n = len(head)
    flat = body.reshape(n, -1, 9)
    tr_body = np.einsum("akx,bkx->abk", flat, flat)
    phi = np.arccos(np.clip((tr_body - 1) / 2, -1.0, 1.0)).mean(-1)
    cost = d / opts.sigma_head_m + theta / opts.sigma_root_rad + phi / opts.sigma_body_rad
    ok = (d < opts.head_gate_m) & (theta < opts.root_gate_rad) & (phi < opts.body_gate_rad)
    return cost, ok


def cluster_frame(cost, admissible, views):
    """Labels 0..k-1 for n detections: greedy average-linkage merging with complete-link gating."""
    n = len(views)
    admissible = admissible & (views[:, None] != views[None, :])
    np.fill_diagonal(admissible, False)
    total = np.where(admissible, cost, 0.0)
    count = np.ones((n, n))
    allowed = admissible.copy()
    labels = np.arange(n)
    while True:
        avg = np.where(allowed, total / count, np.inf)
        flat = int(np.argmin(avg))
        a, b = divmod(flat, n)
        if not np.isfinite(avg[a, b]):
            break
        # merge b into a
        total[a] += total[b]
        total[:, a] = total[a]
        count[a] += count[b]
        count[:, a] = count[a]
        allowed[a] &= allowed[b]
        allowed[:, a] = allowed[a]
        allowed[b] = False
        allowed[:, b] = False
        allowed[a, a] = False
        labels[labels == b] = a
    return np.unique(labels, return_inverse=True)[1]


def associate(time, view, head, root, body, opts=None):
    """Global cluster label (0..K-1) of each detection; clusters never span two timesteps.

    Labels are ordered by time. head (D, 3), root (D, 3, 3), body (D, 21, 3, 3).
    """
    opts = opts or AssociationOptions()
    order = np.argsort(time, kind="stable")
    bounds = np.flatnonzero(np.diff(time[order])) + 1
    labels = np.empty(len(time), dtype=np.int64)
    next_label = 0
    for group in np.split(order, bounds):
        if len(group) == 0:
            continue
        if len(group) == 1:
            local = np.zeros(1, dtype=np.int64)
        else:
            cost, ok = pair_costs(head[group], root[group], body[group], opts)
            local = cluster_frame(cost, ok, view[group])
        labels[group] = local + next_label
        next_label += int(local.max()) + 1
    return labels
