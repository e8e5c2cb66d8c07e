"""Cross-view person association at one timestep, from geometry only (no appearance).

Two detections from different views may be the same person when their world-frame head
positions, root orientations and body poses agree. Pair cost (dimensionless):

    cost = d / sigma_head + theta_root / sigma_root + phi_body / sigma_body

d the head distance (metres, after the first scale estimate), theta_root the geodesic angle
between world root orientations, phi_body the mean geodesic angle over the 21 body joints
(radians). A pair is admissible only under all three gates and when the views differ. The head
and root gates widen with the noise measured on the data (`measured_gates`), up to twice their
configured values.
Clusters grow by agglomerative merging in order of average pair cost, and two clusters merge only
when every cross pair is admissible (complete-link gating): so a cluster never holds two
detections of one view, a person seen by one view stays a cluster of one, and missed or false
detections simply leave smaller clusters.
"""


import numpy as np

from ..options import AssociationOptions  # noqa: F401 (declared in the options schema)


def pair_terms(head, root, body):
    """Head distance, root angle and mean body-joint angle (each (n, n)) of n detections.

    head (n, 3) world, root (n, 3, 3) world root rotations, body (n, 21, 3, 3) body rotations.
    """
    d = np.linalg.norm(head[:, None] - head[None], axis=-1)
    tr_root = np.einsum("aij,bij->ab", root, root)
    theta = np.arccos(np.clip((tr_root - 1) / 2, -1.0, 1.0))
    n = len(head)
    flat = body.reshape(n, -1, 9)
    tr_body = np.einsum("akx,bkx->abk", flat, flat)
    phi = np.arccos(np.clip((tr_body - 1) / 2, -1.0, 1.0)).mean(-1)
    return d, theta, phi


def pair_costs(head, root, body, opts, gates=None):
    """Cost and admissibility (n, n) of every pair of n detections of one timestep.

    `gates` (head m, root rad, body rad) override the options' gates (see `measured_gates`).
    """
    d, theta, phi = pair_terms(head, root, body)
    return _cost(d, theta, phi, opts, gates)


def _cost(d, theta, phi, opts, gates=None):
    g_head, g_root, g_body = gates or (opts.head_gate_m, opts.root_gate_rad, opts.body_gate_rad)
    cost = d / opts.sigma_head_m + theta / opts.sigma_root_rad + phi / opts.sigma_body_rad
    ok = (d < g_head) & (theta < g_root) & (phi < g_body)
    return cost, ok


def measured_gates(terms, views, opts):
    """Gates widened to the noise of the data at hand.

    For every detection, the smallest head distance (and root angle) to a detection of another
    view at the same timestep is, for most detections, the distance to the same person seen
    from elsewhere: its median measures the per-view noise. A gate is then the larger of its
    configured value and `adaptive_factor` times that median (on the simulated benchmarks 5x the
    median lies above the 99th percentile of true same-person pairs), at most `max_widening`
    times the configured value.
    """
    near = [[], []]
    for (d, theta, _), v in zip(terms, views):
        other = v[:, None] != v[None, :]
        if not other.any():
            continue
        for i, m in enumerate((d, theta)):
            best = np.where(other, m, np.inf).min(1)
            near[i].append(best[np.isfinite(best)])
    base = (opts.head_gate_m, opts.root_gate_rad)
    gates = []
    for values, gate in zip(near, base):
        values = np.concatenate(values) if values else np.zeros(0)
        wide = opts.adaptive_factor * float(np.median(values)) if len(values) >= 10 else gate
        gates.append(float(np.clip(wide, gate, opts.max_widening * gate)))
    return gates[0], gates[1], opts.body_gate_rad


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


def associate(time, view, head, root, body, opts=None, return_gates=False):
    """Global cluster label (0..K-1) of each detection; clusters never span two timesteps.

    Labels are ordered by time. head (D, 3), root (D, 3, 3), body (D, 21, 3, 3).
    With `return_gates`, also the (head m, root rad, body rad) gates used.
    """
    opts = opts or AssociationOptions()
    order = np.argsort(time, kind="stable")
    bounds = np.flatnonzero(np.diff(time[order])) + 1
    groups = [g for g in np.split(order, bounds) if len(g)]
    terms = [pair_terms(head[g], root[g], body[g]) for g in groups]
    gates = None
    if opts.adaptive:
        gates = measured_gates(terms, [view[g] for g in groups], opts)
    labels = np.empty(len(time), dtype=np.int64)
    next_label = 0
    for group, (d, theta, phi) in zip(groups, terms):
        if len(group) == 1:
            local = np.zeros(1, dtype=np.int64)
        else:
            cost, ok = _cost(d, theta, phi, opts, gates)
            local = cluster_frame(cost, ok, view[group])
        labels[group] = local + next_label
        next_label += int(local.max()) + 1
    used = gates or (opts.head_gate_m, opts.root_gate_rad, opts.body_gate_rad)
    return (labels, used) if return_gates else labels
