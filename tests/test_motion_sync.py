"""Motion sync on simulated views whose cameras started at different times (fractional frames):
offsets against the known start times, resampling against plain slicing, failure modes."""
import numpy as np
import pytest

from chromm_addon.evaluation.evaluate import evaluate_take
from chromm_addon.evaluation.simulate import desync_views, simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.fusion.motion_sync import resample_views
from chromm_addon.fusion.pipeline import FuseOptions, fuse_views, motion_offsets

FINE = 4      # simulated at 4x the rate, so starts are multiples of a quarter frame
T = 120       # frames per view (4 s at 30 fps)


def desynced(shifts, seed=1, noise="low", walk_speed=(1.0, 1.4), people=3):
    scene = make_scene(num_people=people, num_views=len(shifts), seed=seed, fps=30.0 * FINE,
                       num_frames=(T + int(np.ceil(max(shifts))) + 2) * FINE, walk_speed=walk_speed)
    return scene, desync_views(simulate_views(scene, noise, seed=seed), FINE, shifts, T)


def expected(shifts, reference):
    # view v's frame t + shifts[r] - shifts[v] shows what the reference shows at frame t
    return shifts[reference] - np.asarray(shifts)


@pytest.fixture(scope="module")
def offset_take():
    shifts = [0.0, 0.25, 12.5, 31.75]
    return shifts, desynced(shifts)


def test_offsets_found_to_a_quarter_frame(offset_take):
    shifts, (scene, views) = offset_take
    found = motion_offsets(views)
    np.testing.assert_allclose(found.offsets, expected(shifts, found.reference), atol=0.25)
    assert found.confidence.min() >= 0.25 and not found.notes


def test_fuse_resamples_onto_the_reference_timeline(offset_take):
    shifts, (scene, views) = offset_take
    take = fuse_views(views)
    sync = take.meta["sync"]
    ref = sync["reference"]
    assert sync["method"] == "motion" and sync["applied"]
    np.testing.assert_allclose(sync["offsets_frames"], expected(shifts, ref), atol=0.25)
    np.testing.assert_allclose(sync["offsets_s"], np.asarray(sync["offsets_frames"]) / 30.0)
    # common timestep k is the reference's frame k + start_frame: scene frame (k + k0 + shift_ref)
    k0 = sync["start_frame"]
    frames = (np.arange(take.num_frames) + k0 + shifts[ref]) * FINE
    truth = scene.at_frames(np.round(frames).astype(int), fps=30.0)
    r = evaluate_take(take, truth)
    assert take.num_people == 3 and r["id_switches"] <= 1
    # the same scene simulated in sync, over the same frames, fused without sync, for comparison
    _, in_sync = desynced([shifts[ref]] * 4)
    same, _ = resample_views(in_sync, [float(k0)] * 4)  # whole frames: a slice
    plain = fuse_views(same, options=FuseOptions(sync="none"))
    assert plain.num_frames >= take.num_frames
    base = evaluate_take(plain, scene.at_frames((np.arange(plain.num_frames) + k0 + shifts[ref]) * FINE, fps=30.0))
    assert r["w_mpjpe"] < base["w_mpjpe"] * 1.3 + 0.01
    # without sync the same views associate badly: people split and identities switch
    unsynced = evaluate_take(fuse_views(views, options=FuseOptions(sync="none")),
                             scene.at_frames((np.arange(T) + shifts[0]) * FINE, fps=30.0), views=views)
    assert unsynced["assoc_accuracy"] < 0.9 and unsynced["id_switches"] > r["id_switches"] + 2
    assert unsynced["w_mpjpe"] > r["w_mpjpe"]


def test_whole_frame_resampling_is_slicing():
    _, views = desynced([0.0, 0.0], people=2)
    out, k0 = resample_views(views, [0.0, 3.0])
    assert k0 == 0 and out.num_frames == T - 3
    np.testing.assert_array_equal(out.cam_c2w[1], views.cam_c2w[1, 3:])
    np.testing.assert_array_equal(out.cam_c2w[0], views.cam_c2w[0, :T - 3])
    for v, shift in ((0, 0), (1, 3)):
        src = (views.det_view == v) & (views.det_time >= shift) & (views.det_time < T - 3 + shift)
        dst = out.det_view == v
        np.testing.assert_array_equal(np.sort(out.det_time[dst]), np.sort(views.det_time[src] - shift))
        np.testing.assert_allclose(np.sort(out.det_head_cam[dst], axis=0), np.sort(views.det_head_cam[src], axis=0))
    # half a frame: the cameras halfway (translations), detections interpolated between frames
    half, _ = resample_views(views, [0.0, 0.5])
    np.testing.assert_allclose(half.cam_c2w[1, :, :3, 3],
                               (views.cam_c2w[1, :T - 1, :3, 3] + views.cam_c2w[1, 1:, :3, 3]) / 2, atol=1e-5)


def test_people_standing_still_give_no_offset_and_say_so():
    shifts = [0.0, 9.5]
    _, views = desynced(shifts, walk_speed=(0.0, 0.0))
    found = motion_offsets(views)
    take = fuse_views(views)
    assert not take.meta["sync"]["applied"]
    assert found.confidence.min() < 0.2 and any("does not fix" in n for n in found.notes)
