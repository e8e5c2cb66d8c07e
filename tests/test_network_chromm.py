"""CHROMM heads and the combined network: token gathering, geometry of the outputs, masks."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import cv2  # noqa: E402

from chromm_addon.body.lbs import forward_kinematics  # noqa: E402
from chromm_addon.body.skeleton import approximate_rest_joints  # noqa: E402
from chromm_addon.network import chromm  # noqa: E402
from chromm_addon.network.image_maps import multihmr_map, resize_map  # noqa: E402


@pytest.fixture(autouse=True)
def _inference():
    with torch.no_grad():
        yield


def _zero_last(mlp, bias=None):
    with torch.no_grad():
        mlp.fc2.weight.zero_()
        mlp.fc2.bias.zero_() if bias is None else mlp.fc2.bias.copy_(torch.as_tensor(bias))


def _inputs(seed=0):
    """Two images 160x90 (Pi3X input 112x56 here) and Multi-HMR's 112 square, hand-made maps."""
    gen = torch.Generator().manual_seed(seed)
    cfg = chromm.heads_config("tiny")
    m, patch_hw = 2, (4, 8)
    wh, pi3x_wh, size = (160, 90), (112, 56), 112
    mp, mm = resize_map(wh, pi3x_wh), multihmr_map(wh, size)
    scale = torch.tensor([mp.scale[0] / mm.scale[0], mp.scale[1] / mm.scale[1]]).repeat(m, 1)
    offset = torch.tensor([mp.offset[0] - mp.scale[0] * mm.offset[0] / mm.scale[0],
                           mp.offset[1] - mp.scale[1] * mm.offset[1] / mm.scale[1]]).repeat(m, 1)
    tokens = torch.randn(m, patch_hw[0] * patch_hw[1], cfg.pi3x_dim, generator=gen)
    K = torch.tensor([[80.0, 0, 55.5], [0, 70.0, 27.5], [0, 0, 1]]).repeat(m, 1, 1)
    z = torch.full((m, 56, 112), 3.0)
    return cfg, tokens, (scale, offset), K, z, patch_hw, mp, mm


def test_fusion_reads_the_pi3x_token_at_the_head_place():
    cfg, tokens, maps, K, z, patch_hw, mp, mm = _inputs()
    heads = chromm.ChrommHeads(cfg).eval()
    seen = {}
    heads.fuse.register_forward_hook(lambda mod, args, out: seen.update(x=args[0]))
    cells = torch.tensor([[3, 2], [7, 5]])            # (col, row) on Multi-HMR's 8x8 grid
    img = torch.tensor([0, 1])
    head_tokens = torch.randn(2, cfg.mhmr_dim)
    heads(head_tokens, tokens, img, cells, maps, z, K, patch_hw)
    for d, (col, row) in enumerate(cells.tolist()):
        # Patch centre in the padded square -> original -> Pi3X input, by hand.
        centre = np.array([(col + 0.5) * 14 - 0.5, (row + 0.5) * 14 - 0.5])
        x, y = mp.apply(mm.inverse().apply(centre))
        index = int(np.clip(np.floor((y + 0.5) / 14), 0, 3)) * 8 + int(np.clip(np.floor((x + 0.5) / 14), 0, 7))
        assert torch.equal(seen["x"][d, :cfg.mhmr_dim], head_tokens[d])
        assert torch.equal(seen["x"][d, cfg.mhmr_dim:], tokens[img[d], index])


def test_head_placement_and_rotations_with_zero_residuals():
    cfg, tokens, maps, K, z, patch_hw, mp, mm = _inputs(1)
    heads = chromm.ChrommHeads(cfg).eval()
    for mlp in (heads.dec_offset, heads.dec_depth, heads.dec_root, heads.dec_pose):
        _zero_last(mlp)
    z[1, 20:40, 60:90] = 2.0
    cells, img = torch.tensor([[4, 4], [5, 4]]), torch.tensor([0, 1])
    out = heads(torch.randn(2, cfg.mhmr_dim), tokens, img, cells, maps, z, K, patch_hw)
    # Zero offset: the head is the Multi-HMR patch centre mapped into Pi3X's input.
    for d, (col, row) in enumerate(cells.tolist()):
        centre = np.array([(col + 0.5) * 14 - 0.5, (row + 0.5) * 14 - 0.5])
        np.testing.assert_allclose(out["head_2d"][d].numpy(), mp.apply(mm.inverse().apply(centre)), atol=1e-4)
    # Zero residual: depth is Pi3X's z there; the 3D head projects back onto the 2D head.
    assert out["head_cam"][:, 2].tolist() == pytest.approx([3.0, 2.0])
    for d in range(2):
        proj, _ = cv2.projectPoints(out["head_cam"][d].double().numpy()[None], np.zeros(3), np.zeros(3),
                                    K[d].double().numpy(), None)
        np.testing.assert_allclose(proj[0, 0], out["head_2d"][d].numpy(), atol=1e-3)
    # Zero rotation residuals: the upright-facing-camera root prior and identity joints.
    np.testing.assert_allclose(out["rotmats"][:, 0].numpy(), np.tile(np.diag([1.0, -1, -1]), (2, 1, 1)), atol=1e-6)
    np.testing.assert_allclose(out["rotmats"][:, 1:].numpy(), np.broadcast_to(np.eye(3), (2, 52, 3, 3)), atol=1e-6)
    assert out["betas"].shape == (2, 10) and out["expression"].shape == (2, 10)


def test_pelvis_coarse_patch_then_fine_offset():
    cfg, tokens, maps, K, z, patch_hw, _, _ = _inputs(2)
    heads = chromm.ChrommHeads(cfg).eval()
    with torch.no_grad():   # logits = Pi3X token channel 0, so the coarse patch is its argmax
        heads.pelvis_query.weight.zero_()
        heads.pelvis_query.bias.zero_()
        heads.pelvis_query.bias[0] = 1.0
        heads.pelvis_key.weight.zero_()
        heads.pelvis_key.bias.zero_()
        heads.pelvis_key.weight[0, 0] = 1.0
        tokens[:, :, 0] = 0.0
        tokens[0, 2 * 8 + 5, 0] = 5.0        # row 2, col 5
        tokens[1, 3 * 8 + 1, 0] = 5.0        # row 3, col 1
    _zero_last(heads.dec_pelvis, bias=[0.25, -0.5])
    out = heads(torch.randn(2, cfg.mhmr_dim), tokens, torch.tensor([0, 1]), torch.tensor([[1, 1], [2, 2]]),
                maps, z, K, patch_hw)
    expected = [[(5 + 0.5 + 0.25) * 14 - 0.5, (2 + 0.5 - 0.5) * 14 - 0.5],
                [(1 + 0.5 + 0.25) * 14 - 0.5, (3 + 0.5 - 0.5) * 14 - 0.5]]
    np.testing.assert_allclose(out["pelvis_2d"].numpy(), expected, atol=1e-5)


def test_mask_logits_are_laid_out_per_patch():
    cfg = chromm.heads_config("tiny")
    heads = chromm.ChrommHeads(cfg).eval()
    _zero_last(heads.mask, bias=torch.arange(196.0))
    logits = heads.person_mask(torch.randn(2, 6, cfg.pi3x_dim), torch.randn(2, 6, cfg.mhmr_dim), (2, 3))
    assert logits.shape == (2, 28, 42)
    # Pixel (row r*14 + i, col c*14 + j) holds output i*14 + j of patch (r, c).
    assert logits[1, 14 + 3, 28 + 5].item() == 3 * 14 + 5
    assert logits[0, 13, 0].item() == 13 * 14


def test_head_from_pelvis_matches_forward_kinematics():
    rest = approximate_rest_joints()
    rng = np.random.default_rng(3)
    rot = np.stack([cv2.Rodrigues(v)[0] for v in rng.normal(0, 0.6, (2 * 55, 3))]).reshape(2, 55, 3, 3)
    _, positions = forward_kinematics(rot, rest)
    rotmats = np.zeros((2, 53, 3, 3))
    rotmats[:, :22] = rot[:, :22]
    out = chromm.head_from_pelvis(torch.tensor(rotmats), torch.tensor(rest))
    np.testing.assert_allclose(out.numpy(), positions[:, 15] - positions[:, 0], atol=1e-10)


def test_person_capsules_hand_case():
    z = torch.full((2, 60, 40), 4.0)
    z[0, :, 30:] = 9.0                        # a far wall on the right of image 0
    mask = chromm.person_capsules(torch.tensor([[10.0, 10.0]]), torch.tensor([[10.0, 20.0]]),
                                  torch.tensor([4.2]), torch.tensor([0]), z)
    # Capsule from (10, 10) to (10, 36), radius 5; depth within 1 m of 4.2.
    assert mask[0, 10, 10] and mask[0, 36, 10] and mask[0, 30, 14]
    assert not mask[0, 42, 10] and not mask[0, 30, 16] and not mask[1].any()
    z[0, 30, 12] = 6.0                        # a point behind the person stays
    mask = chromm.person_capsules(torch.tensor([[10.0, 10.0]]), torch.tensor([[10.0, 20.0]]),
                                  torch.tensor([4.2]), torch.tensor([0]), z)
    assert not mask[0, 30, 12] and mask[0, 30, 11]


def test_model_presets_build_and_match_widths():
    pi3x, mhmr, heads = chromm.build_pi3x("tiny"), chromm.build_multihmr("tiny"), chromm.build_heads("tiny")
    assert heads.config.pi3x_dim == 2 * pi3x.config.dec_dim
    assert heads.config.mhmr_dim == mhmr.backbone.encoder.embed_dim
    with torch.device("meta"):
        full = chromm.build_heads("full")
        assert full.config.pi3x_dim == 2 * chromm.build_pi3x("full").config.dec_dim


def test_composition_uses_pi3x_intrinsics_for_multihmr():
    """Multi-HMR runs with Pi3X's K mapped into its square: its own 3D head (at its own depth)
    lies on the same camera ray as the head placed at Pi3X's depth."""
    from chromm_addon.network.multihmr_preprocess import letterbox_frames
    from chromm_addon.network.preprocess import frames_to_tensor, resize_frames

    torch.manual_seed(0)
    net = chromm.ChrommNetwork(chromm.build_pi3x("tiny"), chromm.build_multihmr("tiny"), det_thresh=0.0).eval()
    frames = np.random.default_rng(0).integers(0, 256, (2, 90, 160, 3), dtype=np.uint8)
    mp, mm = resize_map((160, 90), (56, 42)), multihmr_map((160, 90), 112)
    maps_p = (torch.tensor([mp.scale] * 2, dtype=torch.float32), torch.tensor([mp.offset] * 2, dtype=torch.float32))
    maps_m = (torch.tensor([mm.scale] * 2, dtype=torch.float32), torch.tensor([mm.offset] * 2, dtype=torch.float32))
    out = net(frames_to_tensor(resize_frames(frames, (56, 42))), letterbox_frames(frames, 112), maps_p, maps_m)
    ours, theirs = out["det_head_cam"].double(), out["mhmr_head_cam"].double()
    assert ours.shape[0] > 0
    cos = (ours * theirs).sum(-1) / (ours.norm(dim=-1) * theirs.norm(dim=-1))
    np.testing.assert_allclose(cos.numpy(), 1.0, atol=1e-6)
    assert out["person_mask"].shape == (2, 42, 56) and out["K"].shape == (2, 3, 3)
