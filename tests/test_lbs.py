"""Numpy SMPL-X forward pass (chromm_addon.body.lbs) against the smplx package (torch, CPU)."""

import numpy as np
import pytest

from chromm_addon.body.lbs import forward_kinematics, full_pose_matrices, posed_joints, skin
from chromm_addon.body.model_file import load_smplx_model
from chromm_addon.body.skeleton import PARENTS
from chromm_addon.geometry.rotations import axis_angle_to_matrix

torch = pytest.importorskip("torch")
smplx = pytest.importorskip("smplx")

BATCH = 3


def random_params(rng, batch=BATCH, scale=0.5):
    return {
        "betas": rng.normal(size=(batch, 10)),
        "expression": rng.normal(size=(batch, 10)),
        "global_orient": rng.normal(size=(batch, 3)) * 1.5,
        "body_pose": rng.normal(size=(batch, 63)) * scale,
        "jaw_pose": rng.normal(size=(batch, 3)) * 0.2,
        "left_hand_pose": rng.normal(size=(batch, 45)) * scale,
        "right_hand_pose": rng.normal(size=(batch, 45)) * scale,
        "transl": rng.normal(size=(batch, 3)),
    }


def smplx_forward(model_path, params, flat_hand_mean):
    layer = smplx.SMPLX(model_path, num_betas=10, num_expression_coeffs=10, use_pca=False,
                        flat_hand_mean=flat_hand_mean, batch_size=BATCH, dtype=torch.float64)
    with torch.no_grad():
        out = layer(**{k: torch.from_numpy(v) for k, v in params.items()},
                    leye_pose=torch.zeros(BATCH, 3, dtype=torch.float64),
                    reye_pose=torch.zeros(BATCH, 3, dtype=torch.float64))
    return out.vertices.numpy(), out.joints.numpy()[:, :55]


@pytest.fixture(scope="module")
def model(smplx_model_path):
    return load_smplx_model(smplx_model_path)


def pose_matrices(model, p, flat_hand_mean):
    hands = None if flat_hand_mean else (model.hands_mean_left, model.hands_mean_right)
    return full_pose_matrices(p["global_orient"], p["body_pose"], p["jaw_pose"],
                              p["left_hand_pose"], p["right_hand_pose"], hands_mean=hands)


@pytest.mark.parametrize("flat_hand_mean", [True, False])
def test_skin_equals_smplx_forward(model, smplx_model_path, flat_hand_mean):
    params = random_params(np.random.default_rng(11 + flat_hand_mean))
    want_v, want_j = smplx_forward(smplx_model_path, params, flat_hand_mean)
    rot = pose_matrices(model, params, flat_hand_mean)
    assert rot.shape == (BATCH, 55, 3, 3)
    for b in range(BATCH):
        got = skin(model, params["betas"][b], params["expression"][b], rot[b], params["transl"][b])
        assert got.shape == (10475, 3)
        assert np.max(np.abs(got - want_v[b])) < 1e-5
    # Joints: the synthetic model's expressions leave joints in place, as the real model's do.
    got_j = posed_joints(model, params["betas"], rot, params["transl"])
    assert np.max(np.abs(got_j - want_j)) < 1e-5


def test_hand_mean_matters(model, smplx_model_path):
    """The two settings differ on this model, so the comparison above tests both paths."""
    params = random_params(np.random.default_rng(5))
    flat = skin(model, params["betas"][0], params["expression"][0],
                pose_matrices(model, params, True)[0], params["transl"][0])
    mean = skin(model, params["betas"][0], params["expression"][0],
                pose_matrices(model, params, False)[0], params["transl"][0])
    assert np.max(np.abs(flat - mean)) > 1e-3


def test_zero_pose_is_the_shaped_template(model):
    rng = np.random.default_rng(2)
    betas, expr, transl = rng.normal(size=10), rng.normal(size=10), rng.normal(size=3)
    rot = np.broadcast_to(np.eye(3), (55, 3, 3))
    got = skin(model, betas, expr, rot, transl)
    # float32 skinning weights sum to 1 within 1e-7.
    np.testing.assert_allclose(got, model.shaped_vertices(betas, expr) + transl, atol=1e-6)


def test_forward_kinematics_by_hand():
    rng = np.random.default_rng(4)
    rest = rng.normal(size=(55, 3))
    rot = axis_angle_to_matrix(rng.normal(size=(55, 3)))
    g_rot, g_pos = forward_kinematics(rot, rest)
    for j in (0, 4, 21, 39, 54):
        chain = []
        k = j
        while k >= 0:
            chain.append(k)
            k = PARENTS[k]
        chain.reverse()
        r, pos = np.eye(3), rest[0].copy()
        for a, b in zip(chain, chain[1:]):
            r = r @ rot[a]
            pos = pos + r @ (rest[b] - rest[a])
        np.testing.assert_allclose(g_rot[j], r @ rot[j], atol=1e-12)
        np.testing.assert_allclose(g_pos[j], pos, atol=1e-12)
