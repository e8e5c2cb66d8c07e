"""Head-anchored bodies -> SMPL-X transl, checked against the smplx package's forward pass."""

import numpy as np
import pytest

from chromm_addon.body.lbs import forward_kinematics, full_pose_matrices
from chromm_addon.body.model_file import load_smplx_model
from chromm_addon.body.skeleton import HEAD, approximate_rest_joints
from chromm_addon.evaluation.simulate import simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.fusion.body import RestSkeleton, joint_positions, rotvec53_to_joints
from chromm_addon.fusion.pipeline import fuse_views
from chromm_addon.fusion.smplx_params import transl_from_head

torch = pytest.importorskip("torch")
smplx = pytest.importorskip("smplx")


def smplx_joints(model_path, params):
    n = len(params["betas"])
    layer = smplx.SMPLX(model_path, num_betas=10, num_expression_coeffs=10, use_pca=False,
                        flat_hand_mean=True, batch_size=n, dtype=torch.float64)
    with torch.no_grad():
        out = layer(**{k: torch.from_numpy(np.asarray(v, dtype=np.float64).reshape(n, -1))
                       for k, v in params.items()})
    return out.joints.numpy()[:, :55]


def random_pose(rng, n):
    rotvec = rng.normal(scale=0.4, size=(n, 53, 3))
    rotvec[:, 0] = rng.normal(scale=1.5, size=(n, 3))
    return rotvec


def test_rest_skeleton_matches_the_model_regressor(smplx_model_path):
    model = load_smplx_model(smplx_model_path)
    rng = np.random.default_rng(0)
    betas, expr = rng.normal(size=(4, 10)), rng.normal(size=(4, 10))
    got = RestSkeleton(model).joints(betas, expr)
    for b, e, g in zip(betas, expr, got):
        np.testing.assert_allclose(g, model.J_regressor @ model.shaped_vertices(b, e), atol=1e-10)
    np.testing.assert_allclose(RestSkeleton(None).joints(betas), np.broadcast_to(
        approximate_rest_joints(), (4, 55, 3)))


def test_joint_positions_equal_full_forward_kinematics():
    rng = np.random.default_rng(1)
    rot = rotvec53_to_joints(random_pose(rng, 5))
    rest = approximate_rest_joints() + rng.normal(scale=0.01, size=(5, 55, 3))
    _, g_pos = forward_kinematics(rot, rest)
    wanted = [15, 0, 11, 7, 54]
    np.testing.assert_allclose(joint_positions(rot, rest, wanted), g_pos[:, wanted], atol=1e-12)
    # only the chains are read: the first 22 joints suffice for head, pelvis and feet
    np.testing.assert_allclose(joint_positions(rot[:, :22], rest, [15, 11]), g_pos[:, [15, 11]],
                               atol=1e-12)


def test_transl_puts_the_smplx_head_joint_at_the_target(smplx_model_path):
    model = load_smplx_model(smplx_model_path)
    rng = np.random.default_rng(2)
    n = 6
    rotvec = random_pose(rng, n)
    betas, expr = rng.normal(size=(n, 10)), rng.normal(size=(n, 10))
    head = rng.normal(scale=3.0, size=(n, 3))
    rot = rotvec53_to_joints(rotvec)
    transl = transl_from_head(head, rot, RestSkeleton(model).joints(betas, expr))
    joints = smplx_joints(smplx_model_path, {
        "betas": betas, "expression": expr, "global_orient": rotvec[:, 0],
        "body_pose": rotvec[:, 1:22], "left_hand_pose": rotvec[:, 22:37],
        "right_hand_pose": rotvec[:, 37:52], "jaw_pose": rotvec[:, 52], "transl": transl})
    np.testing.assert_allclose(joints[:, HEAD], head, atol=1e-9)
    # the numpy FK agrees on every joint, so the whole skeleton is where smplx puts it
    rot55 = full_pose_matrices(rotvec[:, 0], rotvec[:, 1:22], rotvec[:, 52], rotvec[:, 22:37],
                               rotvec[:, 37:52])
    _, g_pos = forward_kinematics(rot55, RestSkeleton(model).joints(betas, expr))
    np.testing.assert_allclose(g_pos + transl[:, None], joints, atol=1e-7)


def test_fused_take_heads_are_the_smplx_head_joints(smplx_model_path):
    model = load_smplx_model(smplx_model_path)
    scene = make_scene(num_people=2, num_views=3, num_frames=12, seed=3, model=model)
    views = simulate_views(scene, "realistic", seed=3, model=model)
    take = fuse_views(views, model)
    assert take.num_people == 2
    p, t = np.nonzero(take.valid)
    joints = smplx_joints(smplx_model_path, {
        "betas": take.betas[p], "expression": take.expression[p, t],
        "global_orient": take.global_orient[p, t], "body_pose": take.body_pose[p, t],
        "left_hand_pose": take.left_hand_pose[p, t], "right_hand_pose": take.right_hand_pose[p, t],
        "jaw_pose": take.jaw_pose[p, t], "transl": take.transl[p, t]})
    # float32 storage of the parameters limits the agreement to about 1e-5 m
    np.testing.assert_allclose(joints[:, HEAD], take.extra["person_head"][p, t], atol=5e-5)
