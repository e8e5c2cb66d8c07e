"""Pi3X port: shapes, parameter counts and keys of the full model (meta device), checkpoint
loading, permutation equivariance, camera head, RoPE, attention, geometry and preprocessing."""
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chromm_addon.network import geometry  # noqa: E402
from chromm_addon.network.camera_head import svd_orthogonalize  # noqa: E402
from chromm_addon.network.conv_head import normalized_view_plane_uv  # noqa: E402
from chromm_addon.network.layers import SelfAttentionRope, RoPE2D, patch_positions, rope_2d  # noqa: E402
from chromm_addon.network.pi3x import MULTIMODAL_PREFIXES, Pi3X, is_multimodal_key, pi3x_config  # noqa: E402
from chromm_addon.network.preprocess import (  # noqa: E402
    frames_to_tensor, pi3x_image_size, preprocess_frames, resize_frames)
from reference_listing import load_patterns  # noqa: E402


def randomized_tiny(seed=0, keep=()):
    """Tiny Pi3X with every parameter drawn at a scale where each branch changes the output
    (parameters under the prefixes `keep` stay as built)."""
    torch.manual_seed(seed)
    model = Pi3X(pi3x_config("tiny")).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if keep and name.startswith(tuple(keep)):
                continue
            if name.endswith(("norm1.weight", "norm2.weight", "norm3.weight", "norm_y.weight", "norm.weight")):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p[0].numel()))
    return model


@pytest.fixture(scope="module")
def full_meta():
    with torch.device("meta"):
        return Pi3X(pi3x_config("full"))


# ----------------------------------------------------------------------------------------------
# Model structure
# ----------------------------------------------------------------------------------------------

def test_tiny_forward_shapes_and_dtypes():
    model = randomized_tiny()
    b, n, h, w = 2, 3, 14 * 4, 14 * 6
    with torch.no_grad():
        out = model(torch.rand(b, n, 3, h, w))
    assert out["points"].shape == (b, n, h, w, 3)
    assert out["local_points"].shape == (b, n, h, w, 3)
    assert out["rays"].shape == (b, n, h, w, 3)
    assert out["conf"].shape == (b, n, h, w, 1)
    assert out["camera_poses"].shape == (b, n, 4, 4)
    assert out["metric"].shape == (b,)
    assert out["decoder_tokens"].shape == (b, n, 5 + 4 * 6, 2 * 64)
    assert out["patch_hw"] == (4, 6)
    torch.testing.assert_close(out["rays"].norm(dim=-1), torch.ones(b, n, h, w))
    # local points lie on their rays, in front of the camera
    assert (out["local_points"][..., 2] > 0).all()
    cos = torch.nn.functional.cosine_similarity(out["local_points"], out["rays"], dim=-1)
    torch.testing.assert_close(cos, torch.ones_like(cos))
    # world points = pose applied to local points (pose translation already metric)
    pose = out["camera_poses"]
    world = torch.einsum("bnij,bnhwj->bnhwi", pose[..., :3, :3], out["local_points"]) + pose[..., None, None, :3, 3]
    torch.testing.assert_close(world, out["points"], rtol=1e-4, atol=1e-4)


def test_chunked_conv_heads_equal_one_pass():
    model = randomized_tiny(seed=5)
    chunked = Pi3X(pi3x_config("tiny", head_chunk=2)).eval()
    chunked.load_checkpoint_state(model.state_dict())
    x = torch.rand(1, 3, 3, 28, 42)
    with torch.no_grad():
        a, b = model(x), chunked(x)
    for key in ("points", "conf"):
        torch.testing.assert_close(a[key], b[key])


def test_forward_rejects_sizes_off_the_patch_grid():
    model = Pi3X(pi3x_config("tiny")).eval()
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model(torch.rand(1, 1, 3, 30, 28))


def test_bf16_autocast_keeps_heads_in_float32():
    model = randomized_tiny()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(1, 2, 3, 28, 42))
    for key in ("points", "local_points", "rays", "conf", "camera_poses", "metric"):
        assert out[key].dtype == torch.float32, key
        assert torch.isfinite(out[key]).all(), key


def test_full_parameter_count_matches_reference(full_meta):
    """models.md: 992.47M without the multimodal branch, and the per-prefix figures; the fact
    sheet: the branch is 436 tensors, 367,567,104 parameters, the whole 1,360,032,439 elements."""
    def millions(prefix):
        return round(sum(p.numel() for n, p in full_meta.named_parameters() if n.startswith(prefix)) / 1e6, 2)

    branch = [(n, p) for n, p in full_meta.named_parameters() if is_multimodal_key(n)]
    assert len(branch) == 436 and sum(p.numel() for _, p in branch) == 367_567_104
    assert sum(v.numel() for v in full_meta.state_dict().values()) == 1_360_032_439
    assert round(sum(p.numel() for n, p in full_meta.named_parameters() if not is_multimodal_key(n)) / 1e6, 2) == 992.47
    assert millions("encoder.") == 304.37
    assert millions("decoder.") == 453.55
    assert millions("point_decoder.") == 66.13
    assert millions("conf_decoder.") == 66.13
    assert millions("camera_decoder.") == 65.60
    assert millions("camera_head.") == 2.11
    assert millions("point_head.") == 8.23
    assert millions("conf_head.") == 8.21
    assert round((full_meta.metric_token.numel() + sum(p.numel() for n, p in full_meta.named_parameters()
                                                       if n.startswith(("metric_decoder.", "metric_head.")))) / 1e6, 2) == 18.13
    assert len(full_meta.state_dict()) == 1873


def _collapse(keys_shapes, indexed_patterns):
    """state dict -> {pattern: (shape, index range)} in state-dict-keys.md's notation: the first
    numeric index becomes `#` where the listing writes the key that way, literal elsewhere."""
    groups = {}
    for key, shape in keys_shapes:
        match = re.search(r"\.(\d+)\.", key)
        pattern = key[:match.start(1)] + "#" + key[match.end(1):] if match else None
        if pattern in indexed_patterns:
            entry = groups.setdefault(pattern, [shape, []])
            assert entry[0] == shape, f"{pattern}: shapes differ across indices"
            entry[1].append(int(match.group(1)))
        else:
            groups[key] = [shape, []]
    return {p: (s, (min(i), max(i)) if i else None) for p, (s, i) in groups.items()}


def test_full_state_dict_keys_and_shapes_match_reference_listing(full_meta):
    """Every line of the reference listing, the multimodal branch included, and nothing else."""
    reference = load_patterns("Pi3X")
    ours = _collapse(((k, tuple(v.shape)) for k, v in full_meta.state_dict().items()),
                     {p for p in reference if "#" in p})
    assert set(ours) == set(reference), (sorted(set(ours) - set(reference)), sorted(set(reference) - set(ours)))
    for pattern, (shape, rng) in reference.items():
        assert ours[pattern] == (shape, rng), pattern
    # the multimodal prefixes name exactly the reference's other keys
    assert {k.split(".")[0] for k in load_patterns("Pi3X") if is_multimodal_key(k)} == {
        p.rstrip(".") for p in MULTIMODAL_PREFIXES}


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------

def test_tiny_safetensors_checkpoint_loads_with_zero_missing_keys(tmp_path):
    from safetensors.torch import load_file, save_file

    source = randomized_tiny(seed=1)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))

    target = randomized_tiny(seed=2)
    missing, unexpected = target.load_checkpoint_state(load_file(str(path)))
    assert missing == [] and unexpected == []
    x = torch.rand(1, 2, 3, 28, 42)
    with torch.no_grad():
        a, b = source(x), target(x)
    for key in ("points", "conf", "camera_poses", "metric"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_checkpoint_without_the_multimodal_branch_loads_into_a_model_without_it():
    source = randomized_tiny(seed=3)
    source.disable_multimodal()
    state = dict(source.state_dict())
    assert not any(is_multimodal_key(k) for k in state)
    model = Pi3X(pi3x_config("tiny", multimodal=False))
    missing, unexpected = model.load_checkpoint_state(state)
    assert missing == [] and unexpected == []
    with pytest.raises(ValueError, match="without the multimodal branch"):
        model(torch.rand(1, 2, 3, 28, 28), intrinsics=torch.eye(3).expand(1, 2, 3, 3))


def test_shape_mismatch_is_an_error_naming_the_key():
    model = Pi3X(pi3x_config("tiny"))
    state = dict(model.state_dict())
    state["metric_head.weight"] = torch.zeros(1, 33)
    with pytest.raises(ValueError, match="metric_head.weight"):
        model.load_checkpoint_state(state)


# ----------------------------------------------------------------------------------------------
# Behaviour
# ----------------------------------------------------------------------------------------------

def test_permuting_views_permutes_outputs():
    model = randomized_tiny(seed=3)
    x = torch.rand(1, 4, 3, 28, 42)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        a = model(x)
        b = model(x[:, perm])
    # a view's outputs depend on the others, so equivariance is not trivially per-view
    with torch.no_grad():
        alone = model(x[:, :1])
    assert not torch.allclose(alone["local_points"][:, 0], a["local_points"][:, 0], atol=1e-3)
    for key in ("points", "local_points", "rays", "conf", "camera_poses", "decoder_tokens"):
        torch.testing.assert_close(b[key], a[key][:, perm], rtol=1e-4, atol=1e-4, msg=key)
    torch.testing.assert_close(b["metric"], a["metric"], rtol=1e-5, atol=0)


def test_camera_rotations_are_proper_and_nearest():
    torch.manual_seed(0)
    m = torch.randn(256, 3, 3, dtype=torch.float64)
    r = svd_orthogonalize(m)
    eye = torch.eye(3, dtype=torch.float64).expand(256, 3, 3)
    torch.testing.assert_close(r.transpose(-1, -2) @ r, eye)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(256, dtype=torch.float64))
    # independent reference: numpy SVD of the row-normalised matrix, reflection removed
    rows = m.numpy() / np.linalg.norm(m.numpy(), axis=-1, keepdims=True)
    u, _, vt = np.linalg.svd(rows)
    d = np.sign(np.linalg.det(u @ vt))
    expected = u @ (np.eye(3) * np.stack([np.ones_like(d), np.ones_like(d), d], -1)[:, None, :]) @ vt
    np.testing.assert_allclose(r.numpy(), expected, atol=1e-10)
    # a rotation maps to itself
    from scipy.spatial.transform import Rotation
    rot = torch.from_numpy(Rotation.random(16, random_state=1).as_matrix())
    torch.testing.assert_close(svd_orthogonalize(rot), rot)
    # and the model's camera poses are proper rigid transforms
    model = randomized_tiny(seed=4)
    with torch.no_grad():
        pose = model(torch.rand(1, 3, 3, 28, 28))["camera_poses"][0]
    torch.testing.assert_close(pose[:, :3, :3].transpose(-1, -2) @ pose[:, :3, :3], torch.eye(3).expand(3, 3, 3),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.linalg.det(pose[:, :3, :3]), torch.ones(3), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pose[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(3, 4))


def test_rope_positions_offset_and_explicit_rotation():
    pos = patch_positions(2, 2, 3, 5, device="cpu")
    assert pos.shape == (2, 11, 2)
    assert pos[0, :5].eq(0).all()                         # registers at (0, 0)
    assert pos[0, 5:].tolist() == [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]   # (row+1, col+1)

    # explicit computation for head_dim 8: 4 channels per axis, frequencies 1 and 1/sqrt(100)=0.1
    torch.manual_seed(0)
    x = torch.randn(1, 1, 1, 8, dtype=torch.float64)
    y_pos, x_pos = 3, 7
    out = rope_2d(x, torch.tensor([[[y_pos, x_pos]]]), base=100.0)[0, 0, 0]
    v = x[0, 0, 0]
    expected = torch.empty(8, dtype=torch.float64)
    for half, p in ((0, y_pos), (4, x_pos)):
        for j, freq in enumerate((1.0, 0.1)):
            a, b = v[half + j], v[half + j + 2]           # channel j pairs with j + D/2 (rotate-half)
            angle = p * freq
            expected[half + j] = a * math.cos(angle) - b * math.sin(angle)
            expected[half + j + 2] = b * math.cos(angle) + a * math.sin(angle)
    torch.testing.assert_close(out, expected)
    # position (0, 0) leaves the vector unchanged; q.k depends only on the position difference
    torch.testing.assert_close(rope_2d(x, torch.zeros(1, 1, 2, dtype=torch.long)), x)
    q, k = torch.randn(2, 1, 1, 1, 16, dtype=torch.float64).unbind(0)

    def score(pq, pk):
        return (rope_2d(q, torch.tensor([[pq]])) * rope_2d(k, torch.tensor([[pk]]))).sum()
    torch.testing.assert_close(score([2, 5], [4, 1]), score([12, 15], [14, 11]))


def test_attention_equals_naive_softmax():
    """SDPA + qk-norm + RoPE equals softmax(q k^T / sqrt(d)) v written out by hand."""
    torch.manual_seed(0)
    dim, heads, tokens = 32, 4, 11
    attn = SelfAttentionRope(dim, heads, qk_norm=True, rope=RoPE2D(100)).double()
    with torch.no_grad():
        for p in attn.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, tokens, dim, dtype=torch.float64)
    pos = patch_positions(2, 2, 5, 1, "cpu")
    got = attn(x, pos)

    qkv = x @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = qkv.reshape(2, tokens, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    q = torch.nn.functional.layer_norm(q, (dim // heads,), attn.q_norm.weight, attn.q_norm.bias, 1e-6)
    k = torch.nn.functional.layer_norm(k, (dim // heads,), attn.k_norm.weight, attn.k_norm.bias, 1e-6)
    q, k = rope_2d(q, pos), rope_2d(k, pos)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dim // heads), dim=-1)
    expected = (weights @ v).transpose(1, 2).reshape(2, tokens, dim) @ attn.proj.weight.T + attn.proj.bias
    torch.testing.assert_close(got, expected)


def test_view_plane_uv_spans_the_diagonal():
    uv = normalized_view_plane_uv(6, 4, aspect_ratio=6 / 4, dtype=torch.float64)
    assert uv.shape == (4, 6, 2)
    diag = math.hypot(6, 4)
    # pixel centres: half a pixel inside the corners (+-3, +-2) / |(3, 2)|, in units of the half diagonal
    torch.testing.assert_close(uv[0, 0], torch.tensor([-5 / diag, -3 / diag], dtype=torch.float64))
    torch.testing.assert_close(uv[-1, -1], torch.tensor([5 / diag, 3 / diag], dtype=torch.float64))
    torch.testing.assert_close(uv[1, 2] - uv[1, 1], torch.tensor([2 / diag, 0], dtype=torch.float64))


# ----------------------------------------------------------------------------------------------
# Geometry and preprocessing
# ----------------------------------------------------------------------------------------------

def test_intrinsics_recovered_from_synthetic_rays():
    h, w = 30, 44
    K = torch.tensor([[[52.0, 0, (w - 1) / 2], [0, 47.0, (h - 1) / 2], [0, 0, 1]],
                      [[80.0, 0, (w - 1) / 2], [0, 80.0, (h - 1) / 2], [0, 0, 1]]], dtype=torch.float64)
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], dim=-1)
    rays = torch.einsum("bij,hwj->bhwi", torch.linalg.inv(K), pix)
    rays = torch.nn.functional.normalize(rays, dim=-1) * torch.rand(2, h, w, 1, dtype=torch.float64).add(0.5)
    torch.testing.assert_close(geometry.recover_intrinsics_from_rays(rays), K)
    # float32 Pi3X-style rays (normalised [xy, 1]) give the same K to float precision
    k32 = geometry.recover_intrinsics_from_rays(torch.nn.functional.normalize(rays.float(), dim=-1))
    torch.testing.assert_close(k32, K.float(), rtol=1e-5, atol=1e-4)


def test_unit_conversions_against_opencv():
    import cv2

    K = torch.tensor([[500.0, 0, 319.5], [0, 480.0, 239.5], [0, 0, 1]], dtype=torch.float64)
    pts = torch.tensor([[0.3, -0.2, 2.0], [-1.0, 0.5, 4.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    uv = geometry.project(K, pts)
    cv_uv, _ = cv2.projectPoints(pts.numpy(), np.zeros(3), np.zeros(3), K.numpy(), None)
    np.testing.assert_allclose(uv.numpy(), cv_uv[:, 0], atol=1e-9)
    torch.testing.assert_close(geometry.unproject(K, uv, pts[:, 2]), pts)
    # resizing 640x480 -> 320x240: a point's pixel maps by (u + 0.5) * s - 0.5
    K_half = geometry.rescale_intrinsics(K, (640, 480), (320, 240))
    torch.testing.assert_close(geometry.project(K_half, pts), (uv + 0.5) * 0.5 - 0.5)
    assert geometry.focal_from_fov(60.0, 896) == pytest.approx(896 / (2 * math.tan(math.pi / 6)))
    assert geometry.fov_from_focal(geometry.focal_from_fov(47.0, 640), 640) == pytest.approx(47.0)


@pytest.mark.parametrize("size, expected", [((1920, 1080), (672, 378)), ((1000, 1000), (504, 504)),
                                            ((1080, 1920), (378, 672))])
def test_pi3x_image_size(size, expected):
    assert pi3x_image_size(*size) == expected


def test_pi3x_image_size_invariants():
    for w, h in [(640, 480), (3840, 2160), (500, 333), (4000, 100), (97, 1201)]:
        tw, th = pi3x_image_size(w, h)
        assert tw % 14 == 0 and th % 14 == 0 and tw * th <= 255000
        assert abs(math.log((tw / th) / (w / h))) < 0.2 or min(tw, th) <= 28


def test_preprocess_frames_resizes_and_scales():
    from PIL import Image

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 3, 90, 160, 3), dtype=np.uint8)
    x, size = preprocess_frames(frames, pixel_limit=14 * 14 * 20)
    assert size == pi3x_image_size(160, 90, 14 * 14 * 20)
    assert x.shape == (2, 3, 3, size[1], size[0]) and x.dtype == torch.float32
    direct = np.asarray(Image.fromarray(frames[1, 2]).resize(size, Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(np.round(x[1, 2].permute(1, 2, 0).numpy() * 255).astype(np.uint8), direct)
    assert frames_to_tensor(np.full((1, 2, 2, 3), 255, np.uint8)).eq(1.0).all()
    with pytest.raises(ValueError, match="uint8"):
        resize_frames(frames.astype(np.float32), size)
