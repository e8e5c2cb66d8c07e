"""Temporal identity: link the fused bodies of successive timesteps into tracks.

Geometry and shape only, never appearance. Each track predicts its head position with constant
velocity (least-squares slope over its last `velocity_window` observations). Per timestep,
matching is a cascade of minimum-cost assignments:
1. tracks seen within the last `active_gap_s` against the new bodies, cost = distance from the
   prediction + `turn_cost_m_per_rad` * angle between the track's last root orientation and the
   body's, gate `gate_m` on the distance. Crossing people keep their ids because each follows its
   own predicted path and keeps facing its own way, even when their heads come within a few
   centimetres;
2. the remaining bodies against tracks lost for up to `max_gap_s` (re-identification after an
   occlusion), cost = distance / gate + `betas_weight` * shape distance, with a gate growing by
   `reid_speed_mps` per second lost and a prediction extrapolated at most `max_extrapolation_s`;
3. what is left starts new tracks, except bodies within `duplicate_m` of a body matched at this
   timestep: those are pieces of one person that the association split (too noisy to merge),
   not a new person, and are left out.
Tracks with fewer than `min_track_s` of observations (false detections, stray clusters) are
dropped, and only tracks that have reached that length may be re-identified after a long gap.
All durations are in seconds and converted with the take's fps (at least one timestep).

Re-identification must explain the gap, so a newcomer does not inherit a departed identity:
- distance against time: the body must lie within `gate_m + reid_speed_mps * gap` of the lost
  track's prediction (a walking person covers no more in the time lost);
- exits: with a `coverage` function (how many cameras see a world point at a timestep), a track
  whose last position, carried on with its velocity for `exit_horizon_s`, is seen by no camera
  walked out of the cameras' sight. It is closed: whoever enters later gets a new identity, even
  at the same place, because an empty gap outside every view explains nothing about who comes
  back (someone who steps out and back in gets a new id; the person map merges them);
- shape: a body whose betas lie more than `reid_betas_gate` from the track's mean betas is not
  that person (different bodies differ by several units, one body's fused betas by a few tenths).
"""


import numpy as np

from ..options import TrackingOptions  # noqa: F401 (declared in the options schema)
from .assignment import linear_sum_assignment


class _Track:
    def __init__(self, t, pos, betas, root):
        self.exited = None  # (last time, whether it left every camera's sight then)
        self.times = [t]
        self.pos = [pos]
        self.root = root
        self.betas_sum = np.array(betas, dtype=np.float64)
        self.velocity = np.zeros(3)

    @property
    def last_time(self):
        return self.times[-1]

    @property
    def betas(self):
        return self.betas_sum / len(self.times)

    def predict(self, t, fps, max_extrapolation_s):
        dt = min((t - self.last_time) / fps, max_extrapolation_s)
        return self.pos[-1] + self.velocity * dt

    def add(self, t, pos, betas, root, fps, opts):
        self.times.append(t)
        self.pos.append(pos)
        self.root = root
        self.betas_sum += betas
        n = min(len(self.times), opts.velocity_window)
        if n >= 2:
            ts = np.array(self.times[-n:], dtype=np.float64) / fps
            tc = ts - ts.mean()
            vel = tc @ np.array(self.pos[-n:]) / max(tc @ tc, 1e-12)  # least-squares slope
            speed = np.sqrt(vel @ vel)
            if speed > opts.max_speed_mps:
                vel *= opts.max_speed_mps / speed
            self.velocity = vel


def _match(cost, gate_ok):
    rows, cols = linear_sum_assignment(np.where(gate_ok, cost, np.inf))
    keep = gate_ok[rows, cols]
    return rows[keep], cols[keep]


def _has_exited(tr, fps, opts, coverage):
    """Whether a lost track left every camera's sight (cached per last sighting)."""
    if coverage is None:
        return False
    if tr.exited is None or tr.exited[0] != tr.last_time:
        ahead = tr.pos[-1] + tr.velocity * opts.exit_horizon_s
        seen = coverage(ahead[None], np.array([tr.last_time]))[0]
        tr.exited = (tr.last_time, bool(seen == 0))
    return tr.exited[1]


def track(time, head, betas, fps, opts=None, root=None, coverage=None):
    """Track index (0..P-1, ordered by first appearance) of each body, -1 where dropped.

    time (K,) int timesteps, head (K, 3) world head positions (metres), betas (K, B),
    root (K, 3, 3) world root orientations or None (position and shape only),
    coverage: None or a function (points (N, 3), times (N,)) -> (N,) number of cameras that see
    each point (exits are then told from occlusions, see the module docstring).
    """
    opts = opts or TrackingOptions()
    time = np.asarray(time)
    if root is None:
        root = np.broadcast_to(np.eye(3), (len(time), 3, 3))
    assigned = np.full(len(time), -1, dtype=np.int64)
    tracks = []
    min_obs = max(2, int(round(opts.min_track_s * fps)))
    active_steps = max(1, int(round(opts.active_gap_s * fps)))  # at least the previous timestep
    order = np.argsort(time, kind="stable")
    bounds = np.flatnonzero(np.diff(time[order])) + 1
    for group in np.split(order, bounds):
        if len(group) == 0:
            continue
        t = int(time[group[0]])
        free = list(group)
        steps = np.array([t - tr.last_time for tr in tracks])
        gaps = steps / fps
        confirmed = np.array([len(tr.times) >= min_obs for tr in tracks], dtype=bool)
        active = [i for i in range(len(tracks)) if steps[i] <= active_steps]
        lost = [i for i in range(len(tracks)) if steps[i] > active_steps
                and (gaps[i] <= opts.max_gap_s if confirmed[i] else steps[i] <= 2 * active_steps)
                and not _has_exited(tracks[i], fps, opts, coverage)]
        for stage, candidates in ((0, active), (1, lost)):
            if not candidates or not free:
                continue
            pred = np.array([tracks[i].predict(t, fps, opts.max_extrapolation_s) for i in candidates])
            obs = head[free]
            diff = pred[:, None] - obs[None]
            dist = np.sqrt(np.einsum("abi,abi->ab", diff, diff))
            if stage == 0:
                gate = np.full(len(candidates), opts.gate_m)
                last_root = np.array([tracks[i].root for i in candidates])
                cos = (np.einsum("aij,bij->ab", last_root, root[free]) - 1) / 2
                cost = dist + opts.turn_cost_m_per_rad * np.arccos(np.clip(cos, -1.0, 1.0))
                ok = dist < gate[:, None]
            else:
                gate = opts.gate_m + opts.reid_speed_mps * gaps[candidates]
                shape = np.linalg.norm(np.array([tracks[i].betas for i in candidates])[:, None]
                                       - betas[free][None], axis=-1)
                cost = dist / gate[:, None] + opts.betas_weight * shape
                ok = (dist < gate[:, None]) & (shape < opts.reid_betas_gate)
            rows, cols = _match(cost, ok)
            for r, c in zip(rows, cols):
                k = free[c]
                tracks[candidates[r]].add(t, head[k], betas[k], root[k], fps, opts)
                assigned[k] = candidates[r]
            taken = set(cols.tolist())
            free = [k for j, k in enumerate(free) if j not in taken]
        matched_heads = head[[k for k in group if assigned[k] >= 0 and k not in free]]
        for k in free:
            if len(matched_heads) and np.min(np.linalg.norm(matched_heads - head[k], axis=-1)) < opts.duplicate_m:
                continue  # a piece of a person the association split: not a new person
            assigned[k] = len(tracks)
            tracks.append(_Track(t, head[k], betas[k], root[k]))
    keep = np.array([len(tr.times) >= min_obs for tr in tracks], dtype=bool)
    firsts = np.array([tr.times[0] for tr in tracks])
    kept = [i for i in np.argsort(firsts, kind="stable") if keep[i]]
    remap = np.full(len(tracks) + 1, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    return remap[assigned]
