"""Multi-HMR: key layout and size, detection, camera embedding, head, rotations, depth, pelvis."""
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chromm_addon.geometry.rotations import rotation_6d_to_matrix as rotation_6d_numpy  # noqa: E402
from chromm_addon.network.camera_embed import patch_rays, ray_embedding  # noqa: E402
from chromm_addon.network.image_maps import EDGE, multihmr_map  # noqa: E402
from chromm_addon.network.multihmr import (  # noqa: E402
    MultiHMR, default_intrinsics, depth_from_raw, multihmr_config, raw_from_depth, reference_focal,
    suppress_non_maxima,
)
from chromm_addon.network.multihmr_head import CrossAttention, PersonSelfAttention, mean_pose_6d  # noqa: E402
from chromm_addon.network.multihmr_preprocess import (  # noqa: E402
    head_to_original, letterbox_frames, padded_intrinsics,
)
from chromm_addon.network.rotation_torch import matrix_to_axis_angle, rotation_6d_to_matrix  # noqa: E402
from reference_listing import load_listing  # noqa: E402

SIZE = 112  # the tiny configuration's input side (8 x 8 patches)


def _tiny(seed=0):
    torch.manual_seed(seed)
    return MultiHMR(multihmr_config("tiny")).eval()


def _meta(name):
    with torch.device("meta"):
        return MultiHMR(multihmr_config(name))


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------- size and key layout

def test_full896_size_on_meta_device():
    state = _meta("full896").state_dict()
    assert len(state) == 405
    assert sum(v.numel() for v in state.values()) == 317_109_688  # 317.11M, the reference figure
    assert all(v.is_meta for v in state.values())


def test_full896_keys_and_shapes_equal_reference_listing():
    listing = load_listing("Multi-HMR")
    assert _shapes(_meta("full896")) == listing


def test_full672_differs_only_in_the_row_column_tables():
    s896, s672 = _shapes(_meta("full896")), _shapes(_meta("full672"))
    assert set(s896) == set(s672)
    changed = {k for k in s896 if s896[k] != s672[k]}
    assert changed == {f"x_attention_head.cross_{a}_{b}" for a in ("queries", "values") for b in "xy"}
    assert s672["x_attention_head.cross_queries_x"] == (48, 1123)


def test_tiny_has_the_full_key_names():
    def layout(model):  # key names with the ViT block index folded
        return {re.sub(r"\.blocks\.\d+\.", ".blocks.#.", k) for k in model.state_dict()}

    assert layout(_tiny()) == layout(_meta("full896"))


def test_tiny_checkpoint_round_trip_in_upstream_layout(tmp_path):
    source, target = _tiny(seed=1), _tiny(seed=2)
    path = tmp_path / "multiHMR_tiny.pt"
    torch.save({"epoch": 0, "model_state_dict": source.state_dict()}, path)
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state_dict"]
    assert all(k.startswith(("backbone.encoder.", "mlp_classif.", "mlp_offset.", "x_attention_head."))
               for k in state)
    result = target.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    images = torch.rand(2, 3, SIZE, SIZE)
    K = default_intrinsics(SIZE).expand(2, 3, 3)
    with torch.no_grad():
        a = source(images, K, det_thresh=0.0, nms_kernel=1)
        b = target(images, K, det_thresh=0.0, nms_kernel=1)
    for pa, pb in zip(a, b):
        for key in pa:
            assert torch.equal(pa[key], pb[key]), key


def test_mean_parameters_initialise_the_buffers():
    rng = np.random.default_rng(0)
    mean = {"pose": rng.normal(size=144), "shape": rng.normal(size=10), "cam": rng.normal(size=3)}
    head = MultiHMR(multihmr_config("tiny"), mean_params=mean).x_attention_head
    np.testing.assert_allclose(head.init_body_pose[0, :144].numpy(), mean["pose"], rtol=1e-6)
    # the joints past the 24 SMPL ones keep upstream's eye(3)[:, :2] pattern
    np.testing.assert_array_equal(head.init_body_pose[0, 144:].reshape(-1, 6).numpy(),
                                  np.tile([1, 0, 0, 1, 0, 0], (29, 1)))
    np.testing.assert_allclose(head.init_betas[0].numpy(), mean["shape"], rtol=1e-6)
    np.testing.assert_allclose(head.init_betas_kid[0].numpy(), np.r_[mean["shape"], 0], rtol=1e-6)
    np.testing.assert_allclose(head.init_cam[0].numpy(), mean["cam"], rtol=1e-6)
    assert torch.equal(head.init_expression, torch.zeros(1, 10))
    assert torch.equal(mean_pose_6d()[0, :6], torch.tensor([1.0, 0, 0, 1, 0, 0]))


# ---------------------------------------------------------------------------------- rotations

def test_6d_decoding_uses_the_first_two_columns():
    from scipy.spatial.transform import Rotation

    R = Rotation.random(200, random_state=3).as_matrix()
    six = np.concatenate([R[:, :, 0], R[:, :, 1]], -1)
    six_noisy = six * 1.7 + np.random.default_rng(0).normal(scale=0.1, size=six.shape)
    got = rotation_6d_to_matrix(torch.as_tensor(six)).numpy()
    np.testing.assert_allclose(got, R, atol=1e-12)
    noisy = rotation_6d_to_matrix(torch.as_tensor(six_noisy)).numpy()
    np.testing.assert_allclose(noisy, rotation_6d_numpy(six_noisy), atol=1e-12)
    np.testing.assert_allclose(noisy @ noisy.transpose(0, 2, 1), np.broadcast_to(np.eye(3), noisy.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(noisy), 1.0, atol=1e-12)


def test_matrix_to_axis_angle_matches_scipy():
    from scipy.spatial.transform import Rotation

    rotvec = Rotation.random(500, random_state=4).as_rotvec()
    rotvec[:3] = [[0, 0, 0], [1e-9, 0, 0], [0, np.pi, 0]]  # identity, tiny angle, half turn
    rotvec[3] = [0, 0, np.pi - 1e-6]
    got = matrix_to_axis_angle(torch.as_tensor(Rotation.from_rotvec(rotvec).as_matrix())).numpy()
    back = Rotation.from_rotvec(got).as_matrix()
    np.testing.assert_allclose(back, Rotation.from_rotvec(rotvec).as_matrix(), atol=1e-9)
    np.testing.assert_allclose(got[4:], rotvec[4:], atol=1e-9)
    assert np.all(np.linalg.norm(got, axis=-1) <= np.pi + 1e-9)


# ----------------------------------------------------------------------------- camera embedding

def test_ray_embedding_channels_and_order():
    K = torch.tensor([[[500.0, 0, 60], [0, 400, 50], [0, 0, 1]]], dtype=torch.float64)
    emb = ray_embedding(K, 3, 4)
    assert emb.shape == (1, 3, 4, 99)
    row, col = 2, 1
    # upstream feeds the row index as u and the column as v
    ray = np.array([(row * 14 + 7 - 60) / 500, (col * 14 + 7 - 50) / 400, 1.0])
    freqs = np.linspace(1, 32, 16)
    features = (ray[:, None] * freqs).reshape(-1) * np.pi  # d-major, band-minor
    expected = np.concatenate([ray, np.sin(features), np.cos(features)])
    np.testing.assert_allclose(emb[0, row, col].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(patch_rays(K, 3, 4)[0, row, col].numpy(), ray, atol=1e-15)


# ------------------------------------------------------------------------------------ detection

def test_nms_keeps_local_maxima_only():
    scores = torch.tensor([[0.1, 0.2, 0.1, 0.0, 0.0],
                           [0.2, 0.9, 0.3, 0.0, 0.6],
                           [0.1, 0.3, 0.2, 0.0, 0.6],
                           [0.0, 0.0, 0.0, 0.0, 0.0],
                           [0.5, 0.0, 0.0, 0.0, 0.4]])[None, None]

    def peaks(kernel):
        return suppress_non_maxima(scores, kernel)[0, 0].nonzero().tolist()

    # (4, 4) = 0.4 only sees zeros within one patch; (1, 4) and (2, 4) tie and are both kept
    assert peaks(3) == [[1, 1], [1, 4], [2, 4], [4, 0], [4, 4]]
    kept = suppress_non_maxima(scores, 3)[0, 0]
    assert kept[1, 1] == scores[0, 0, 1, 1] and kept[4, 4] == scores[0, 0, 4, 4]
    assert peaks(5) == [[1, 1], [1, 4], [2, 4], [4, 0]]
    assert torch.equal(suppress_non_maxima(scores, 1), scores)


@pytest.mark.parametrize("kernel", [2, 3, 4, 5])
def test_nms_equals_a_naive_window_maximum(kernel):
    """Window of entry (i, j): rows/cols i - pad .. i - pad + k - 1, pad as upstream (1 for k=2)."""
    scores = torch.randint(0, 4, (1, 1, 7, 6)).float() / 4  # many ties
    pad = {2: 1, 4: 2}.get(kernel, (kernel - 1) // 2)
    expected = torch.zeros(7, 6)
    for i in range(7):
        for j in range(6):
            window = scores[0, 0, max(i - pad, 0):i - pad + kernel, max(j - pad, 0):j - pad + kernel]
            if scores[0, 0, i, j] == window.max():
                expected[i, j] = scores[0, 0, i, j]
    assert torch.equal(suppress_non_maxima(scores, kernel)[0, 0], expected)


def test_detection_threshold_and_order_on_a_tiny_network():
    model = _tiny()
    images = torch.rand(2, 3, SIZE, SIZE)
    K = torch.stack([default_intrinsics(SIZE), default_intrinsics(SIZE) * torch.tensor([[2.0], [2.0], [1.0]])])
    with torch.no_grad():
        feats = model.features(images)
        everyone = model.predict_people(feats, K, det_thresh=0.0, nms_kernel=1)
        scores = model.detection_scores(feats)
        some = model.predict_people(feats, K, det_thresh=float(scores.median()), nms_kernel=1)
        nobody = model.predict_people(feats, K, det_thresh=1.0, nms_kernel=3)
    grid = SIZE // 14
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    for i, people in enumerate(everyone):
        n = grid * grid
        assert people["patch"].tolist() == np.stack([rows, cols], -1).tolist()  # row-major
        shapes = {"scores": (n,), "patch": (n, 2), "offset": (n, 2), "head_2d": (n, 2),
                  "rotmat": (n, 53, 3, 3), "rotvec": (n, 53, 3), "betas": (n, 10), "expression": (n, 10),
                  "depth_raw": (n,), "depth": (n,), "head_cam": (n, 3), "tokens": (n, 64), "head_tokens": (n, 64)}
        assert {k: tuple(v.shape) for k, v in people.items()} == shapes
        assert torch.equal(people["scores"], scores[i].reshape(-1))
        expected_2d = (torch.stack([people["patch"][:, 1], people["patch"][:, 0]], -1) + 0.5 + people["offset"]) * 14
        assert torch.allclose(people["head_2d"], expected_2d)
        ray = torch.linalg.solve(K[i], torch.cat([people["head_2d"], torch.ones(n, 1)], -1).T).T
        assert torch.allclose(people["head_cam"], ray * people["depth"][:, None], atol=1e-5)
        R = people["rotmat"]
        assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand_as(R), atol=1e-5)
    assert sum(len(p["scores"]) for p in some) == int((scores >= scores.median()).sum())
    assert all(len(p["scores"]) == 0 and p["rotvec"].shape == (0, 53, 3) for p in nobody)


def test_bf16_autocast_backbone_with_float32_heads():
    model = _tiny(seed=9)
    images, K = torch.rand(1, 3, SIZE, SIZE), default_intrinsics(SIZE)[None]
    with torch.no_grad():
        reference = model(images, K, det_thresh=0.0, nms_kernel=1)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            feats = model.features(images)
            people = model.predict_people(feats, K, det_thresh=0.0, nms_kernel=1)[0]
    assert all(v.dtype in (torch.float32, torch.int64) for v in people.values())
    assert torch.allclose(people["scores"], reference["scores"], atol=0.05)


def test_people_of_one_image_do_not_depend_on_other_images():
    model = _tiny(seed=5)
    images = torch.rand(3, 3, SIZE, SIZE)
    K = default_intrinsics(SIZE).expand(3, 3, 3)
    with torch.no_grad():
        feats = model.features(images)
        scores = model.detection_scores(feats)
        # different numbers of people per image: padding and masking are exercised
        threshold = float(scores.flatten().sort().values[-12])
        together = model.predict_people(feats, K, det_thresh=threshold, nms_kernel=1)
        alone = [model.predict_people(feats[i:i + 1], K[i:i + 1], det_thresh=threshold, nms_kernel=1)[0]
                 for i in range(3)]
    assert len({len(p["scores"]) for p in together}) > 1
    for a, b in zip(together, alone):
        for key in a:
            assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_people_of_one_image_attend_to_each_other():
    model = _tiny(seed=6)
    with torch.no_grad():
        feats = model.features(torch.rand(1, 3, SIZE, SIZE))
        K = default_intrinsics(SIZE)[None]
        scores = model.detection_scores(feats)
        top2 = float(scores.flatten().sort().values[-2])
        pair = model.predict_people(feats, K, det_thresh=top2, nms_kernel=1)[0]
        top1 = float(scores.max())
        single = model.predict_people(feats, K, det_thresh=top1, nms_kernel=1)[0]
    best = int(torch.nonzero(pair["scores"] == single["scores"][0])[0, 0])
    assert not torch.allclose(pair["betas"][best], single["betas"][0], atol=1e-6)


def test_person_self_attention_equals_upstream_masked_softmax():
    torch.manual_seed(7)
    attn = PersonSelfAttention(32, heads=4, dim_head=8)
    x = torch.randn(3, 5, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    q, k, v = (t.reshape(3, 5, 4, 8).transpose(1, 2) for t in attn.to_qkv(x).chunk(3, -1))
    m = mask.float()
    q, k, v = (t * m[:, None, :, None] for t in (q, k, v))
    dots = q @ k.transpose(-1, -2) / math.sqrt(8) - (1 - m)[:, None, None, :] * 10e10
    out = ((dots.softmax(-1) * m[:, None, None, :]) @ v).transpose(1, 2).reshape(3, 5, 32)
    expected = attn.to_out(out)
    got = attn(x, mask=mask)
    assert torch.allclose(got[mask], expected[mask], atol=1e-6)


def test_cross_attention_equals_naive_softmax():
    torch.manual_seed(8)
    attn = CrossAttention(32, context_dim=40, heads=4, dim_head=8)
    x, context = torch.randn(2, 3, 32), torch.randn(2, 10, 40)
    k, v = (t.reshape(2, 10, 4, 8) for t in attn.to_kv(context).chunk(2, -1))
    q = attn.to_q(x).reshape(2, 3, 4, 8)
    weights = (torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(8)).softmax(-1)
    expected = attn.to_out(torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(2, 3, 32))
    assert torch.allclose(attn(x, context=context), expected, atol=1e-6)


# ----------------------------------------------------------------------------------------- depth

def test_depth_conversion_with_the_60_degree_reference_focal():
    f_ref = 896 / (2 * math.tan(math.radians(30)))
    assert reference_focal(896) == pytest.approx(f_ref)
    assert f_ref == pytest.approx(775.959, abs=1e-3)  # 448 * sqrt(3)
    y = torch.tensor([0.5, 0.0, -1.0, 10.0], dtype=torch.float64)
    d = depth_from_raw(y, torch.tensor(2 * f_ref, dtype=torch.float64), 896)
    np.testing.assert_allclose(d.numpy(), [math.e, 1.0, math.exp(-2.0), 50.0], rtol=1e-12)
    d = depth_from_raw(torch.tensor(1.0, dtype=torch.float64), torch.tensor(f_ref, dtype=torch.float64), 896)
    assert float(d) == pytest.approx(math.e)
    depth = torch.tensor([0.7, 3.0, 12.0], dtype=torch.float64)
    focal = torch.tensor([500.0, 900.0, 1400.0], dtype=torch.float64)
    np.testing.assert_allclose(depth_from_raw(raw_from_depth(depth, focal, 672), focal, 672).numpy(), depth.numpy())
    np.testing.assert_allclose(raw_from_depth(torch.tensor(math.e ** 2), torch.tensor(f_ref / 2), 896).item(), 4.0, rtol=1e-6)


def test_default_intrinsics():
    K = default_intrinsics(896).numpy()
    np.testing.assert_allclose(K, [[448 * 3 ** 0.5, 0, 448], [0, 448 * 3 ** 0.5, 448], [0, 0, 1]], rtol=1e-6)
    assert default_intrinsics(672)[0, 2] == 336


# ---------------------------------------------------------------------------------- preprocessing

def test_letterbox_places_the_frame_and_its_intrinsics():
    rng = np.random.default_rng(0)
    frame = np.full((90, 160, 3), 200, np.uint8)
    images = letterbox_frames([frame, frame], size=SIZE)
    assert images.shape == (2, 3, SIZE, SIZE) and images.dtype == torch.float32
    # 160x90 -> 112x63, centred at y = round(24.5) = 24 (PIL rounding), black elsewhere
    rows = images[0, 0, :, 50]
    assert torch.all(rows[:24] == 0) and torch.all(rows[24 + 63:] == 0)
    assert torch.allclose(rows[24:24 + 63], torch.tensor(200 / 255))
    portrait = letterbox_frames(np.full((1, 160, 90, 3), 100, np.uint8), size=SIZE)[0, 1]
    assert torch.all(portrait[:, :24] == 0) and torch.all(portrait[:, 24 + 63:] == 0)
    assert torch.allclose(portrait[:, 24:24 + 63], torch.tensor(100 / 255))
    # a square frame of the input size is passed through untouched
    square = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    assert torch.equal(letterbox_frames(square[None], SIZE)[0], torch.as_tensor(square).permute(2, 0, 1) / 255.0)
    # a 3D point projects to corresponding pixels with either camera
    K = np.array([[150.0, 0, 81.0], [0, 140.0, 43.0], [0, 0, 1]])
    points = rng.normal(size=(20, 3)) + [0, 0, 5]
    pix = (points @ K.T)[:, :2] / points[:, 2:]
    K_pad = padded_intrinsics(K, (160, 90), SIZE)
    pix_pad = (points @ K_pad.T)[:, :2] / points[:, 2:]
    np.testing.assert_allclose(pix_pad, multihmr_map((160, 90), SIZE).then(EDGE).apply(pix), atol=1e-9)
    np.testing.assert_allclose(head_to_original(pix_pad, (160, 90), SIZE), pix, atol=1e-9)
    with pytest.raises(ValueError):
        letterbox_frames(np.zeros((1, 10, 10, 3), np.float32), SIZE)


# --------------------------------------------------------------------------------------- pelvis

def test_pelvis_from_head_matches_smplx_package(smplx_model_path):
    import smplx
    from scipy.spatial.transform import Rotation

    from chromm_addon.body.model_file import load_smplx_model
    from chromm_addon.network.multihmr_joints import pelvis_from_head

    rng = np.random.default_rng(2)
    n = 3
    rotvec = rng.normal(scale=0.3, size=(n, 53, 3))
    betas, expression = rng.normal(size=(n, 10)), rng.normal(size=(n, 10))
    head_cam = rng.normal(size=(n, 3)) + [0, 0, 4]
    got = pelvis_from_head(load_smplx_model(smplx_model_path), head_cam, rotvec, betas, expression)

    # upstream's SMPL_Layer: pose with zero global orient, rotate about the pelvis, recentre on head
    layer = smplx.SMPLX(smplx_model_path, num_betas=10, num_expression_coeffs=10, use_pca=False,
                        flat_hand_mean=True, batch_size=n)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        out = layer(betas=t(betas), expression=t(expression), global_orient=torch.zeros(n, 3),
                    body_pose=t(rotvec[:, 1:22].reshape(n, -1)), left_hand_pose=t(rotvec[:, 22:37].reshape(n, -1)),
                    right_hand_pose=t(rotvec[:, 37:52].reshape(n, -1)), jaw_pose=t(rotvec[:, 52]),
                    leye_pose=torch.zeros(n, 3), reye_pose=torch.zeros(n, 3), transl=torch.zeros(n, 3))
    joints = out.joints.numpy().astype(np.float64)
    R = Rotation.from_rotvec(rotvec[:, 0]).as_matrix()
    rotated = np.einsum("nij,nkj->nki", R, joints - joints[:, :1])
    expected = rotated[:, 0] - rotated[:, 15] + head_cam
    np.testing.assert_allclose(got, expected, atol=2e-5)
