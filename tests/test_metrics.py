"""Metrics on hand-computed cases, and the take-level evaluation on synthetic ground truth."""

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from chromm_addon.evaluation import metrics as M
from chromm_addon.evaluation.evaluate import evaluate_single_views, evaluate_take, take_joints
from chromm_addon.evaluation.simulate import PRESETS, simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from chromm_addon.geometry.similarity import umeyama

RNG = np.random.default_rng(0)


def _similarity(x, s=1.3, rotvec=(0.2, -0.4, 0.9), t=(1.0, -2.0, 0.5)):
    return s * np.asarray(x) @ Rotation.from_rotvec(rotvec).as_matrix().T + np.asarray(t)


def test_umeyama_recovers_a_similarity():
    src = RNG.normal(size=(20, 3))
    sim = umeyama(src, _similarity(src))
    s, R, t = sim.scale, sim.rotation, sim.translation
    assert s == pytest.approx(1.3)
    np.testing.assert_allclose(R, Rotation.from_rotvec((0.2, -0.4, 0.9)).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(t, (1.0, -2.0, 0.5), atol=1e-12)
    sim = umeyama(src, _similarity(src), with_scale=False)
    s, R = sim.scale, sim.rotation
    assert s == 1.0 and np.linalg.det(R) == pytest.approx(1.0)
    # a reflection is never returned
    R = umeyama(src, src * np.array([1, 1, -1])).rotation
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_mpjpe_is_root_relative():
    gt = RNG.normal(size=(5, 4, 3))
    assert M.mpjpe(gt + [3.0, 1.0, 0.0], gt) == pytest.approx(0.0)
    pred = gt.copy()
    pred[:, 2] += [0.3, 0.4, 0.0]  # one of four joints 0.5 m off
    assert M.mpjpe(pred, gt) == pytest.approx(0.5 / 4)
    expected = np.linalg.norm(pred + 1 - gt, axis=-1).mean()
    assert M.mpjpe(pred + 1.0, gt, root=None) == pytest.approx(expected)


def test_pa_mpjpe():
    gt = RNG.normal(size=(3, 6, 3))
    pred = np.stack([_similarity(g, s=0.5 + f, rotvec=(f, 0.3, -f)) for f, g in enumerate(gt)])
    assert M.pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-12)
    # hand case: the cross's y arm collapsed to the centre; best alignment is the identity
    gt = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]])
    pred = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 0, 0], [0, 0, 0]]])
    assert M.pa_mpjpe(pred, gt) == pytest.approx(0.5)


def test_w_mpjpe_aligns_on_the_first_two_frames_only():
    T = 10
    gt = RNG.normal(size=(T, 5, 3))
    drift = np.zeros((T, 1, 3))
    drift[2:, 0, 0] = 0.01 * np.arange(2, T)
    pred = _similarity(gt + drift)  # frames 0 and 1 are an exact similarity of the truth
    expected = 0.01 * np.arange(2, T).sum() / T
    assert M.w_mpjpe(pred, gt) == pytest.approx(expected)
    # WA aligns the whole segment, so it can only do better than the fixed first-two alignment
    assert M.wa_mpjpe(pred, gt) < expected


def test_segments_are_aligned_separately():
    gt = RNG.normal(size=(4, 5, 3))
    pred = np.concatenate([_similarity(gt[:2]), _similarity(gt[2:], s=0.7, rotvec=(1, 0, 0))])
    for fn in (M.w_mpjpe, M.wa_mpjpe):
        assert fn(pred, gt, segment=2) == pytest.approx(0.0, abs=1e-12)
        assert fn(pred, gt, segment=4) > 0.1


def test_world_mpjpe_has_no_alignment():
    gt = np.zeros((2, 3, 3))
    assert M.world_mpjpe(gt + [0.0, 0.0, 0.2], gt) == pytest.approx(0.2)


def test_rte_rigid_alignment_and_path_length():
    gt = np.stack([np.arange(4.0), np.zeros(4), np.zeros(4)], -1)  # path length 3
    assert M.rte(_similarity(gt, s=1.0), gt) == pytest.approx(0.0, abs=1e-10)
    # twice as long about the centroid: no scale allowed, errors 1.5, 0.5, 0.5, 1.5 -> 1.0 / 3
    pred = 2 * (gt - gt.mean(0)) + gt.mean(0)
    assert M.rte(pred, gt) == pytest.approx(100.0 / 3)


def test_jitter_of_a_cubic():
    t = np.arange(10.0)
    x = np.zeros((10, 2, 3))
    x[:, :, 0] = 0.001 * t[:, None] ** 3  # third difference 0.006 every step
    assert M.jitter(x, 30.0) == pytest.approx(0.006 * 30**3)
    valid = np.ones(10, bool)
    valid[5] = False
    assert M.jitter(x, 30.0, valid) == pytest.approx(0.006 * 30**3)
    assert M.jitter(np.zeros((10, 2, 3)), 30.0) == 0.0


def test_foot_sliding_counts_contact_frames_only():
    T = 10
    gt = np.zeros((T, 1, 3))
    gt[5:, 0, 0] = 0.05 * np.arange(1, 6)   # moving from frame 5 on
    pred = np.zeros((T, 1, 3))
    pred[:, 0, 0] = 0.002 * np.arange(T)      # slides 2 mm per frame everywhere
    pred[5:, 0, 0] += 1.0                     # a big jump where the truth moves: not contact
    assert M.foot_sliding(pred, gt) == pytest.approx(0.002)


def test_camera_errors_hand_case():
    gt = np.tile(np.eye(4), (2, 1, 1, 1))
    pred = gt.copy()
    pred[1, 0, :3, :3] = Rotation.from_rotvec([0, 0, np.deg2rad(10)]).as_matrix()
    err = M.camera_errors(pred, gt)
    assert err["cam_rot_deg"] == pytest.approx(5.0, abs=1e-6)  # the mean splits the error
    assert err["cam_trans_m"] == pytest.approx(0.0)


def test_camera_errors_invariant_to_a_similarity():
    scene = make_scene(num_people=0, num_views=3, num_frames=4, camera_motion=0.3)
    gt = scene.cam_c2w
    R = Rotation.from_rotvec((0.1, 0.5, -0.2)).as_matrix()
    pred = gt.copy()
    pred[..., :3, :3] = R @ gt[..., :3, :3]
    pred[..., :3, 3] = _similarity(gt[..., :3, 3], s=0.6, rotvec=(0.1, 0.5, -0.2))
    err = M.camera_errors(pred, gt)
    assert err["cam_rot_deg"] < 1e-5 and err["cam_trans_m"] < 1e-9
    assert err["cam_scale"] == pytest.approx(1 / 0.6)
    pred[0, :, :3, 3] += [0.0, 0.0, 0.3 * 0.6]  # one camera 0.3 m (true units) off
    assert M.camera_errors(pred, gt)["cam_trans_m"] > 0.05


def test_identity_switches_and_mota():
    assigned = np.array([[1, 5], [1, 5], [-1, 5], [1, 6], [2, 6], [2, -1], [1, 6]])
    assert M.identity_switches(assigned) == 3  # person 0: 1->2->1, person 1: 5->6
    gt_valid = np.ones((7, 2), bool)
    pred_valid = np.zeros((7, 4), bool)
    pred_valid[:, :2] = True  # two predictions per frame: 14, of which 12 matched
    mot = M.clear_mot(assigned, gt_valid, pred_valid)
    assert mot == {"mota": pytest.approx(1 - (2 + 2 + 3) / 14), "misses": 2, "false_positives": 2,
                   "id_switches": 3}


def test_association_accuracy():
    gt = np.array([0, 0, 1, 1, 2, 2, -1])
    time = np.array([0, 0, 0, 0, 0, 0, 0])
    perfect = np.array([7, 7, 3, 3, 9, 9, -1])  # any ids, the false positive rejected
    out = M.association_accuracy(perfect, gt, time)
    assert out == {"accuracy": 1.0, "pair_precision": 1.0, "pair_recall": 1.0}
    wrong = np.array([7, 3, 3, 3, 9, 9, 4])  # one detection grouped with person 1, fp accepted
    out = M.association_accuracy(wrong, gt, time)
    assert out["accuracy"] == pytest.approx(5 / 7)
    # predicted same pairs: (1,2),(1,3),(2,3),(4,5) -> 2 right of 4; true pairs 3, found 2
    assert out["pair_precision"] == pytest.approx(2 / 4)
    assert out["pair_recall"] == pytest.approx(2 / 3)


def test_match_by_cost():
    cost = np.array([[0.1, 0.9], [0.2, 0.3], [np.inf, 0.05]])
    assert sorted(M.match_by_cost(cost)) == [(0, 0), (2, 1)]
    assert M.match_by_cost(cost, max_cost=0.08) == [(2, 1)]


@pytest.fixture(scope="module")
def scene():
    return make_scene(num_people=3, num_views=3, num_frames=60, seed=5)


def _moved(take, yaw=0.6, shift=(2.0, -1.0, 0.0), model=None):
    """The same take in a world turned about Z and shifted (a valid fused world)."""
    Rz = Rotation.from_rotvec([0, 0, yaw]).as_matrix()
    joints = take_joints(take, model)
    pelvis_rest = joints[:, :, 0] - take.transl
    go = matrix_to_axis_angle(Rz @ axis_angle_to_matrix(take.global_orient))
    transl = (joints[:, :, 0] @ Rz.T + shift) - pelvis_rest
    c2w = take.cam_c2w.astype(np.float64).copy()
    c2w[..., :3, :3] = Rz @ c2w[..., :3, :3]
    c2w[..., :3, 3] = c2w[..., :3, 3] @ Rz.T + shift
    return dataclasses.replace(take, global_orient=go.astype(np.float32), transl=transl.astype(np.float32),
                               cam_c2w=c2w.astype(np.float32), points=take.points @ Rz.T.astype(np.float32))


def test_evaluate_take_on_ground_truth_in_another_frame(scene):
    result = evaluate_take(_moved(scene.to_take()), scene)
    for key in ("mpjpe", "pa_mpjpe", "w_mpjpe", "wa_mpjpe", "world_mpjpe", "cam_trans_m"):
        assert result[key] < 2e-4, key
    assert result["cam_rot_deg"] < 1e-3
    assert result["mota"] == 1.0 and result["id_switches"] == 0 and result["coverage"] == 1.0
    assert result["jitter"] == pytest.approx(result["gt_jitter"], rel=1e-3)


def test_evaluate_take_counts_a_swap_and_a_body_error(scene):
    take = scene.to_take()
    swapped = dataclasses.replace(take, transl=take.transl.copy(), global_orient=take.global_orient.copy())
    for key in ("transl", "global_orient", "body_pose"):
        arr = getattr(swapped, key).copy()
        arr[0, 30:], arr[1, 30:] = getattr(take, key)[1, 30:], getattr(take, key)[0, 30:]
        setattr(swapped, key, arr)
    result = evaluate_take(swapped, scene)
    assert result["id_switches"] == 2 and result["mota"] == pytest.approx(1 - 2 / (3 * 60))
    assert result["world_mpjpe"] > 0.1  # body metrics follow one track per person: half is wrong
    lifted = dataclasses.replace(take, transl=take.transl + np.float32([0, 0, 0.1]))
    result = evaluate_take(lifted, scene)
    assert result["world_mpjpe"] == pytest.approx(0.1, abs=1e-4)
    assert result["mpjpe"] < 1e-4 and result["w_mpjpe"] < 1e-4  # aligned metrics do not see it


def test_association_from_views(scene):
    views = simulate_views(scene, dataclasses.replace(PRESETS["clean"], false_positive_rate=0.1))
    take = scene.to_take()
    gt = views.extra["gt_det_person"]
    take.extra["det_person"] = np.where(gt >= 0, gt + 10, -1).astype(np.int32)
    result = evaluate_take(take, scene, views=views)
    assert result["assoc_accuracy"] == 1.0 and result["assoc_pair_precision"] == 1.0


def test_single_view_baseline(scene):
    clean = evaluate_single_views(simulate_views(scene, PRESETS["clean"]), scene)
    assert clean["best"]["w_mpjpe"] < 1e-4 and clean["best"]["world_mpjpe"] < 1e-4
    noisy = evaluate_single_views(simulate_views(scene, PRESETS["realistic"]), scene)
    assert 0.02 < noisy["best"]["w_mpjpe"] < 1.0
    # the best view per person is no worse than the average view
    views_w = [row["w_mpjpe"] for row in noisy["per_view"].values()]
    assert noisy["best"]["w_mpjpe"] <= np.mean(views_w)


def test_fuse_on_simulated_views_end_to_end():
    """The test-time modules on the simulator: exact on clean input (fusion alone: the filter and
    the foot locking change motion on purpose), better than one view on noisy."""
    from chromm_addon.fusion.pipeline import FuseOptions, fuse_views

    scene = make_scene(num_people=3, num_views=4, num_frames=60, seed=2, same_shape=True)
    views = simulate_views(scene, PRESETS["clean"])
    fusion_only = FuseOptions(smooth=False, smooth_cameras=False, foot_lock=False)
    result = evaluate_take(fuse_views(views, options=fusion_only), scene, views=views)
    assert result["world_mpjpe"] < 1e-3 and result["w_mpjpe"] < 1e-3
    assert result["assoc_accuracy"] == 1.0 and result["id_switches"] == 0
    assert result["cam_scale"] == pytest.approx(1.0, abs=1e-3)
    views = simulate_views(scene, PRESETS["realistic"])
    result = evaluate_take(fuse_views(views), scene, views=views)
    single = evaluate_single_views(views, scene)["best"]
    assert result["assoc_accuracy"] > 0.95
    assert result["wa_mpjpe"] < single["wa_mpjpe"]


def test_evaluate_take_with_a_model_file(smplx_model_path):
    from chromm_addon.body.model_file import load_smplx_model

    model = load_smplx_model(smplx_model_path)
    scene = make_scene(num_people=2, num_views=2, num_frames=12, model=model, seed=4)
    result = evaluate_take(_moved(scene.to_take(), model=model), scene, model=model)
    assert result["world_mpjpe"] < 2e-4 and result["mota"] == 1.0
    # the approximate skeleton is a different body: evaluating with it must show an error
    np.testing.assert_allclose(take_joints(scene.to_take(), model), scene.joints(), atol=2e-5)
    assert np.abs(take_joints(scene.to_take()) - scene.joints()).max() > 1e-3
