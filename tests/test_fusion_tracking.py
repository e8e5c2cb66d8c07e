"""Temporal identity: crossing people keep their ids, occluded people are re-identified."""

import numpy as np

from chromm_addon.fusion.tracking import track

FPS = 30.0


def observations(paths, visible, rng, sigma=0.025, betas=None):
    """Flatten (P, T, 3) head paths into per-timestep observations with noise."""
    p_idx, t_idx = np.nonzero(visible)
    head = paths[p_idx, t_idx] + rng.normal(scale=sigma, size=(len(p_idx), 3))
    b = np.zeros((len(p_idx), 10)) if betas is None else betas[p_idx]
    return t_idx, head, b, p_idx


def assert_one_id_per_person(ids, person):
    for p in np.unique(person):
        assert len(set(ids[person == p].tolist())) == 1, f"person {p} got ids {set(ids[person == p])}"
    assert len(set(ids.tolist())) == len(np.unique(person))


def test_people_crossing_keep_their_ids():
    rng = np.random.default_rng(0)
    t = np.arange(150) / FPS
    # an X crossing with heads 0.35 m apart at t = 2.5 s and a head-on pass 0.3 m apart,
    # all identical shapes
    a = np.stack([-3 + 1.2 * t, -3 + 1.2 * t, np.full_like(t, 1.6)], -1)
    b = np.stack([-2.65 + 1.2 * t, 3 - 1.2 * t, np.full_like(t, 1.6)], -1)
    c = np.stack([3 - 1.3 * t, np.full_like(t, 5.0), np.full_like(t, 1.6)], -1)
    d = np.stack([-3 + 1.3 * t, np.full_like(t, 5.3), np.full_like(t, 1.6)], -1)
    paths = np.stack([a, b, c, d])
    time, head, betas, person = observations(paths, np.ones((4, 150), bool), rng)
    ids = track(time, head, betas, FPS)
    assert_one_id_per_person(ids, person)


def test_reidentified_after_a_two_second_occlusion():
    rng = np.random.default_rng(1)
    t = np.arange(240) / FPS
    walker = np.stack([-4 + 1.0 * t, 0.5 * np.sin(t), np.full_like(t, 1.7)], -1)
    bystander = np.stack([np.full_like(t, 2.0), np.full_like(t, -2.0), np.full_like(t, 1.6)], -1)
    visible = np.ones((2, 240), bool)
    visible[0, 80:140] = False  # hidden for two seconds
    time, head, betas, person = observations(np.stack([walker, bystander]), visible, rng)
    ids = track(time, head, betas, FPS)
    assert_one_id_per_person(ids, person)


def test_shape_breaks_ties_when_reidentifying():
    rng = np.random.default_rng(2)
    t = np.arange(200) / FPS
    # two people stand 0.6 m apart, both vanish for 1.5 s and reappear at each other's places
    p0 = np.stack([np.zeros_like(t), np.zeros_like(t), np.full_like(t, 1.6)], -1)
    p1 = p0 + [0.6, 0, 0]
    paths = np.stack([p0, p1])
    paths[:, 120:] = paths[::-1, 120:]
    visible = np.ones((2, 200), bool)
    visible[:, 75:120] = False
    shapes = np.zeros((2, 10))
    shapes[1, 0] = 2.0
    time, head, betas, person = observations(paths, visible, rng, betas=shapes)
    ids = track(time, head, betas, FPS)
    assert_one_id_per_person(ids, person)


def test_short_false_tracks_are_dropped():
    rng = np.random.default_rng(3)
    t = np.arange(60) / FPS
    walker = np.stack([t, np.zeros_like(t), np.full_like(t, 1.6)], -1)
    time, head, betas, _ = observations(walker[None], np.ones((1, 60), bool), rng)
    ghost_t = np.array([10, 11, 30])
    ghost = np.array([[4.0, 4.0, 1.5], [4.0, 4.0, 1.5], [-3.0, 2.0, 1.5]])
    ids = track(np.concatenate([time, ghost_t]), np.concatenate([head, ghost]),
                np.zeros((63, 10)), FPS)
    assert set(ids[:60].tolist()) == {0}
    assert (ids[60:] == -1).all()


def test_low_frame_rates_still_link_tracks():
    rng = np.random.default_rng(4)
    fps = 2.0
    t = np.arange(12) / fps
    paths = np.stack([np.stack([0.5 * t, np.zeros_like(t), np.full_like(t, 1.6)], -1),
                      np.stack([0.5 * t, np.full_like(t, 2.0), np.full_like(t, 1.6)], -1)])
    time, head, betas, person = observations(paths, np.ones((2, 12), bool), rng, sigma=0.01)
    ids = track(time, head, betas, fps)
    assert_one_id_per_person(ids, person)


def test_split_pieces_of_one_person_start_no_new_track():
    rng = np.random.default_rng(5)
    t = np.arange(60) / FPS
    walker = np.stack([t, np.zeros_like(t), np.full_like(t, 1.6)], -1)
    time, head, betas, _ = observations(walker[None], np.ones((1, 60), bool), rng, sigma=0.01)
    # the association split the person at 30 timesteps: a second body 0.15 m off each time
    piece_t = np.arange(10, 40)
    pieces = walker[piece_t] + [0.1, 0.11, 0.0]
    ids = track(np.concatenate([time, piece_t]), np.concatenate([head, pieces]),
                np.zeros((90, 10)), FPS)
    assert set(ids[:60].tolist()) == {0}
    assert (ids[60:] == -1).all()


def field_of_view(half_width):
    """Coverage of a square field |x|, |y| < half_width seen by one camera."""
    def coverage(points, times):
        return np.all(np.abs(points[:, :2]) < half_width, axis=1).astype(int)
    return coverage


def test_newcomer_at_a_departed_persons_exit_gets_a_new_identity():
    """One person walks out of the cameras' sight; an identical one walks in at the same place
    1 s later: two identities on every seed. Without exits (no coverage) the tracker re-identifies
    the newcomer, which is what the coverage is for."""
    frames = np.arange(150)
    exit_frame = 75  # the leaver reaches x = 3 m, the edge of the field, at 2.5 s
    leaver = np.stack([1.2 * frames / FPS, np.zeros(150), np.full(150, 1.6)], -1)
    comer = np.stack([3.0 - 1.2 * (frames - exit_frame - 30) / FPS, np.zeros(150), np.full(150, 1.6)], -1)
    paths = np.stack([leaver, comer])
    visible = np.abs(paths[..., 0]) < 3.0
    visible[0, exit_frame:] = False
    visible[1, :exit_frame + 30] = False
    inherited = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        time, head, betas, person = observations(paths, visible, rng)
        ids = track(time, head, betas, FPS, coverage=field_of_view(3.0))
        assert_one_id_per_person(ids, person)
        inherited += len(set(track(time, head, betas, FPS).tolist())) == 1
    assert inherited > 0


def test_occluded_inside_the_view_is_still_reidentified_with_coverage():
    rng = np.random.default_rng(1)
    t = np.arange(240) / FPS
    walker = np.stack([-2 + 0.8 * t, 0.5 * np.sin(t), np.full_like(t, 1.7)], -1)
    visible = np.ones((1, 240), bool)
    visible[0, 80:140] = False
    time, head, betas, person = observations(walker[None], visible, rng)
    ids = track(time, head, betas, FPS, coverage=field_of_view(5.0))
    assert_one_id_per_person(ids, person)


def test_different_shapes_are_not_reidentified():
    rng = np.random.default_rng(6)
    t = np.arange(200) / FPS
    # one person stands, vanishes for 1 s; someone of another shape appears where it stood
    p = np.stack([np.zeros_like(t), np.zeros_like(t), np.full_like(t, 1.6)], -1)
    paths = np.stack([p, p])
    visible = np.zeros((2, 200), bool)
    visible[0, :80], visible[1, 110:] = True, True
    shapes = np.zeros((2, 10))
    shapes[1, :3] = 1.5
    time, head, betas, person = observations(paths, visible, rng, betas=shapes)
    assert_one_id_per_person(track(time, head, betas, FPS), person)
    same = observations(paths, visible, np.random.default_rng(6))
    assert len(set(track(*same[:3], FPS).tolist())) == 1  # same shape: re-identified
