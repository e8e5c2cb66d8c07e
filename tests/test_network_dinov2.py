"""DINOv2 backbone: shapes, attention, position-embedding resizing, key layout, checkpoints."""
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chromm_addon.network.dinov2 import Attention, DinoVisionTransformer, dinov2_config  # noqa: E402
from reference_listing import load_listing, subset  # noqa: E402


def _tiny(name, seed=0):
    torch.manual_seed(seed)
    return DinoVisionTransformer(**dinov2_config(name)).eval()


@pytest.mark.parametrize("name, registers", [("vitl14_reg4_pi3x_tiny", 4), ("vitl14_multihmr_tiny", 0)])
def test_tiny_forward_shapes(name, registers):
    model = _tiny(name)
    out = model.forward_features(torch.rand(2, 3, 14 * 6, 14 * 4))
    assert out["x_norm_clstoken"].shape == (2, 64)
    assert out["x_norm_regtokens"].shape == (2, registers, 64)
    assert out["x_norm_patchtokens"].shape == (2, 24, 64)
    assert out["x_prenorm"].shape == (2, 1 + registers + 24, 64)
    assert torch.isfinite(out["x_prenorm"]).all()
    # the normalised tokens are the final LayerNorm of the pre-norm ones
    assert torch.allclose(model.norm(out["x_prenorm"])[:, 1 + registers:], out["x_norm_patchtokens"])


def test_attention_equals_naive_softmax_attention():
    torch.manual_seed(1)
    attn = Attention(48, 3)
    x = torch.randn(2, 11, 48)
    b, n, c = x.shape
    q, k, v = attn.qkv(x).reshape(b, n, 3, 3, c // 3).unbind(2)  # (b, n, heads, head_dim)
    logits = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(c // 3)
    mixed = torch.einsum("bhqk,bkhd->bqhd", logits.softmax(-1), v).reshape(b, n, c)
    assert torch.allclose(attn(x), attn.proj(mixed), atol=1e-5)


def _cubic_weights(t, a=-0.75):
    """Keys' cubic convolution weights for the 4 taps around fractional position t in [0, 1)."""
    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return np.array([far(t + 1), near(t), near(1 - t), far(2 - t)])


def _bicubic_matrix(n_in, n_out, scale):
    """(n_out, n_in) resampling matrix: half-pixel centres, source = (dst + 0.5) / scale - 0.5,
    border taps clamped (what align_corners=False bicubic does without antialiasing)."""
    m = np.zeros((n_out, n_in))
    for j in range(n_out):
        src = (j + 0.5) / scale - 0.5
        base = math.floor(src)
        for tap, w in zip(range(base - 1, base + 3), _cubic_weights(src - base)):
            m[j, min(max(tap, 0), n_in - 1)] += w
    return m


def _antialiased_matrix(n_in, n_out, scale, a=-0.5):
    """(n_out, n_in) antialiased bicubic (PIL-style): Keys kernel with a = -0.5, widened by
    1/scale when shrinking, taps outside the grid dropped and the weights renormalised."""
    def kernel(d):
        d = abs(d)
        if d < 1:
            return ((a + 2) * d - (a + 3)) * d * d + 1
        return (((d - 5) * d + 8) * d - 4) * a if d < 2 else 0.0

    widen = max(1.0, 1.0 / scale)
    m = np.zeros((n_out, n_in))
    for j in range(n_out):
        centre = (j + 0.5) / scale
        lo = max(int(centre - 2 * widen + 0.5), 0)
        hi = min(int(centre + 2 * widen + 0.5), n_in)
        w = np.array([kernel((i - centre + 0.5) / widen) for i in range(lo, hi)])
        m[j, lo:hi] = w / w.sum()
    return m


def _reference_resize(model, rows, cols):
    """Position embedding resized by the numpy reference, with upstream's scale semantics."""
    pos = model.pos_embed.detach().double().numpy()[0]
    side = int(math.isqrt(pos.shape[0] - 1))
    grid = pos[1:].reshape(side, side, -1)
    off = model.interpolate_offset
    scale_r, scale_c = ((rows + off) / side, (cols + off) / side) if off else (rows / side, cols / side)
    matrix = _antialiased_matrix if model.interpolate_antialias else _bicubic_matrix
    out = np.einsum("rs,sti,ct->rci", matrix(side, rows, scale_r), grid, matrix(side, cols, scale_c))
    return np.concatenate([pos[:1], out.reshape(rows * cols, -1)], 0)


def _pos_for(model, rows, cols):
    tokens = torch.zeros(1, 1 + rows * cols, model.embed_dim)
    return model.interpolate_pos_encoding(tokens, rows * 14, cols * 14).detach().double().numpy()[0]


def test_pos_embed_identity_at_native_size():
    model = _tiny("vitl14_multihmr_tiny")
    tokens = torch.zeros(1, 1 + 37 * 37, 64)
    assert model.interpolate_pos_encoding(tokens, 518, 518) is model.pos_embed


@pytest.mark.parametrize("name", ["vitl14_multihmr_tiny", "vitl14_reg4_pi3x_tiny"])
@pytest.mark.parametrize("rows, cols", [(64, 64), (48, 48), (38, 52)])
def test_pos_embed_upsampling_matches_reference(name, rows, cols):
    model = _tiny(name)
    np.testing.assert_allclose(_pos_for(model, rows, cols), _reference_resize(model, rows, cols), atol=2e-6)


def test_offset_shifts_the_sampling_grid():
    model = _tiny("vitl14_multihmr_tiny")
    with_offset = _pos_for(model, 64, 64)
    model.interpolate_offset = 0.0
    without = _pos_for(model, 64, 64)
    assert np.abs(with_offset - without).max() > 1e-3
    np.testing.assert_allclose(without, _reference_resize(model, 64, 64), atol=2e-6)


@pytest.mark.parametrize("rows, cols", [(50, 44), (16, 20)])
def test_antialias_flag(rows, cols):
    model = _tiny("vitl14_reg4_pi3x_tiny")
    smooth = _pos_for(model, rows, cols)
    np.testing.assert_allclose(smooth, _reference_resize(model, rows, cols), atol=2e-6)
    model.interpolate_antialias = False
    sharp = _pos_for(model, rows, cols)
    np.testing.assert_allclose(sharp, _reference_resize(model, rows, cols), atol=2e-6)
    assert np.abs(smooth - sharp).max() > 1e-3
    if rows < 37:  # shrinking: antialiasing low-passes, neighbouring entries differ less
        def roughness(p):
            return np.abs(np.diff(p[1:].reshape(rows, cols, -1), axis=1)).mean()
        assert roughness(smooth) < roughness(sharp)


def _meta_model(name):
    with torch.device("meta"):
        return DinoVisionTransformer(**dinov2_config(name))


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_full_parameter_counts_on_meta_device():
    mhmr = _meta_model("vitl14_multihmr")
    pi3x = _meta_model("vitl14_reg4_pi3x")
    # 304,367,616 for the plain ViT-L/14, + mask token (Multi-HMR) or + 4 registers (Pi3X)
    assert sum(p.numel() for p in mhmr.parameters()) == 304_367_616 + 1024
    assert sum(p.numel() for p in pi3x.parameters()) == 304_367_616 + 4 * 1024
    assert all(p.is_meta for p in mhmr.parameters())


@pytest.mark.parametrize("name, section, prefix", [
    ("vitl14_multihmr", "Multi-HMR", "backbone.encoder."),
    ("vitl14_reg4_pi3x", "Pi3X", "encoder."),
])
def test_full_keys_and_shapes_equal_reference_listing(name, section, prefix):
    listing = load_listing(section)
    assert _shapes(_meta_model(name)) == subset(listing, prefix)


@pytest.mark.parametrize("name", ["vitl14_multihmr", "vitl14_reg4_pi3x"])
def test_tiny_has_the_full_key_layout(name):
    def layout(model):  # key names with the block index folded
        return {re.sub(r"^blocks\.\d+\.", "blocks.#.", k) for k in model.state_dict()}

    assert layout(_tiny(name + "_tiny")) == layout(_meta_model(name))


def test_tiny_checkpoint_round_trip(tmp_path):
    from safetensors.torch import load_file, save_file

    source = _tiny("vitl14_multihmr_tiny", seed=3)
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    target = _tiny("vitl14_multihmr_tiny", seed=4)
    x = torch.rand(1, 3, 70, 98)
    assert not torch.allclose(source(x), target(x))
    result = target.load_state_dict(load_file(str(path)), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(source(x), target(x))


def test_mask_token_replaces_masked_patches():
    model = _tiny("vitl14_multihmr_tiny")
    with torch.no_grad():
        model.mask_token.normal_()
    x = torch.rand(1, 3, 28, 28)
    masks = torch.tensor([[True, False, False, False]])
    out = model.forward_features(x, masks=masks)["x_norm_patchtokens"]
    other = model.forward_features(x * 0.5, masks=torch.ones(1, 4, dtype=torch.bool))["x_norm_patchtokens"]
    assert out.shape == (1, 4, 64) and not torch.allclose(out, model.forward_features(x)["x_norm_patchtokens"])
    # with every patch masked the image content no longer matters
    assert torch.allclose(other, model.forward_features(x, masks=torch.ones(1, 4, dtype=torch.bool))["x_norm_patchtokens"], atol=1e-6)
