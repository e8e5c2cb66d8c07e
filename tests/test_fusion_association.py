"""Cross-view association from geometry only: identical people, misses, false and one-view people."""

import numpy as np

from chromm_addon.evaluation.simulate import so3_noise
from chromm_addon.fusion.association import AssociationOptions, associate, cluster_frame, pair_costs
from chromm_addon.geometry.rotations import axis_angle_to_matrix


def make_frames(rng, num_frames, spacing=0.6, head_sigma=0.05, rot_sigma_deg=10.0):
    """Four identical people in a row `spacing` apart, seen by 4 views: person 3 by view 0 only,
    person 1 missed by view 1, and one false detection per frame far from everyone."""
    time, view, person, head, root, body = [], [], [], [], [], []
    pose = axis_angle_to_matrix(rng.normal(scale=0.3, size=(21, 3)))
    facing = axis_angle_to_matrix(np.array([np.pi / 2, 0.0, 0.0]))
    sig = np.deg2rad(rot_sigma_deg)
    for t in range(num_frames):
        centres = np.array([[spacing * i, 0.0, 1.6] for i in range(4)])
        for v in range(4):
            for p in range(4):
                if (p == 3 and v != 0) or (p == 1 and v == 1):
                    continue
                time.append(t), view.append(v), person.append(p)
                head.append(centres[p] + rng.normal(scale=head_sigma, size=3))
                root.append(facing @ so3_noise(rng, (), sig))
                body.append(pose @ so3_noise(rng, (21,), sig))
        time.append(t), view.append(2), person.append(-1)
        head.append(np.array([5.0, 3.0, 1.6])), root.append(np.eye(3)), body.append(pose)
    return (np.array(time), np.array(view), np.array(person), np.array(head), np.array(root),
            np.array(body))


def test_identical_people_are_separated_by_geometry():
    rng = np.random.default_rng(0)
    time, view, person, head, root, body = make_frames(rng, 60)
    labels = associate(time, view, head, root, body)
    perfect = 0
    for t in range(60):
        at = time == t
        lab, per = labels[at], person[at]
        # clusters never mix people and never hold two detections of one view
        pure = all(len(set(per[lab == c])) == 1 for c in np.unique(lab))
        exclusive = all(len(set(view[at][lab == c])) == (lab == c).sum() for c in np.unique(lab))
        assert exclusive
        complete = all(len(set(lab[per == p])) == 1 for p in range(4))
        perfect += pure and complete
        # the one-view person and the false detection stay on their own
        assert (lab == lab[per == 3][0]).sum() == 1
        assert (lab == lab[per == -1][0]).sum() == 1
    assert perfect >= 59


def test_clusters_never_span_timesteps():
    rng = np.random.default_rng(1)
    time, view, person, head, root, body = make_frames(rng, 5)
    labels = associate(time, view, head, root, body)
    for c in np.unique(labels):
        assert len(set(time[labels == c])) == 1
    for t in range(4):
        assert labels[time == t].max() < labels[time == t + 1].min()


def test_gates_in_metres_and_radians():
    opts = AssociationOptions()
    head = np.array([[0.0, 0, 0], [opts.head_gate_m * 0.9, 0, 0], [opts.head_gate_m * 1.1, 0, 0]])
    root = np.broadcast_to(np.eye(3), (3, 3, 3))
    body = np.broadcast_to(np.eye(3), (3, 21, 3, 3))
    _, ok = pair_costs(head, root, body, opts)
    assert ok[0, 1] and not ok[0, 2]
    turned = np.stack([np.eye(3), axis_angle_to_matrix(np.array([0, 0, opts.root_gate_rad * 1.1]))])
    _, ok = pair_costs(head[:2] * 0, turned, body[:2], opts)
    assert not ok[0, 1]


def test_random_clutter_respects_view_exclusivity():
    rng = np.random.default_rng(2)
    n = 30
    cost = rng.random((n, n))
    cost = cost + cost.T
    labels = cluster_frame(cost, np.ones((n, n), dtype=bool), rng.integers(0, 4, size=n))
    views = rng.integers(0, 4, size=n)
    labels = cluster_frame(cost, np.ones((n, n), dtype=bool), views)
    for c in np.unique(labels):
        assert len(set(views[labels == c])) == (labels == c).sum()
    assert labels.max() + 1 >= int(np.bincount(views).max())


def test_gates_widen_with_the_measured_noise():
    rng = np.random.default_rng(3)
    opts = AssociationOptions()
    time, view, _, head, root, body = make_frames(rng, 20, spacing=1.2, head_sigma=0.05)
    _, quiet_gates = associate(time, view, head, root, body, return_gates=True)
    time, view, person, head, root, body = make_frames(rng, 20, spacing=1.2, head_sigma=0.15,
                                                       rot_sigma_deg=20.0)
    labels, noisy_gates = associate(time, view, head, root, body, return_gates=True)
    fixed = associate(time, view, head, root, body, opts=AssociationOptions(adaptive=False))
    assert quiet_gates[0] == opts.head_gate_m
    assert opts.head_gate_m < noisy_gates[0] <= 2 * opts.head_gate_m

    def complete_fraction(lab):
        return np.mean([len(set(lab[(time == t) & (person == p)])) == 1
                        for t in range(20) for p in range(3)])
    assert complete_fraction(labels) > complete_fraction(fixed)
    assert complete_fraction(labels) >= 0.9
