"""Pi3X's multimodal branch against the facts in docs/network.md ("Conditioning on known cameras"):
zero-initialised paths leave the network bitwise unchanged, the ray map is K^-1 at pixel centres
(checked with cv2.undistortPoints), the pose normalisation, PRoPE attention against an explicit
matrix formulation in float64, the per-view masks and the invariances upstream documents."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chromm_addon.network.pi3x import Pi3X, intrinsics_ray_map, pi3x_config  # noqa: E402
from chromm_addon.network.prope import PoseInjectBlock, PRopeAttention, inverse_se3  # noqa: E402
from test_network_pi3x import randomized_tiny  # noqa: E402


def randomized(seed=0, zero_ray=False):
    return randomized_tiny(seed, keep=("ray_embed.",) if zero_ray else ())


def random_pose(rng, scale=1.0):
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = rng.normal(size=3) * scale
    return T


def poses_tensor(n, seed=0, scale=1.0, dtype=torch.float32):
    rng = np.random.default_rng(seed)
    return torch.tensor(np.stack([random_pose(rng, scale) for _ in range(n)]), dtype=dtype)[None]


K = torch.tensor([[40.0, 0.0, 20.5], [0.0, 38.0, 13.0], [0.0, 0.0, 1.0]])
IMGS = torch.rand(1, 3, 3, 28, 42, generator=torch.Generator().manual_seed(7))


def run(model, **kw):
    with torch.no_grad():
        return model(IMGS, **kw)


def assert_same(a, b, keys=("points", "conf", "camera_poses", "metric", "decoder_tokens")):
    for key in keys:
        assert torch.equal(a[key], b[key]), key


def max_diff(a, b, key="points"):
    return float((a[key] - b[key]).abs().max())


# ----------------------------------------------------------------------------------------- rays

def test_ray_map_is_the_inverse_intrinsics_at_pixel_centres_as_cv2_undistorts_them():
    import cv2

    h, w = 5, 7
    Km = K.numpy().astype(np.float64)
    v, u = np.mgrid[0:h, 0:w]
    pix = np.stack([u + 0.5, v + 0.5], -1).reshape(-1, 1, 2).astype(np.float64)
    expected = cv2.undistortPoints(pix, Km, np.zeros(5)).reshape(h, w, 2)
    got = intrinsics_ray_map(K, h, w).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_zero_initialised_ray_embedding_leaves_the_network_bitwise_unchanged():
    model = randomized(zero_ray=True)
    assert not model.ray_embed.proj.weight.any() and not model.ray_embed.proj.bias.any()
    plain = run(model)
    assert_same(plain, run(model, intrinsics=K.expand(1, 3, 3, 3)))
    # and the freshly built branch is zero there too (upstream's init)
    fresh = Pi3X(pi3x_config("tiny"))
    assert not fresh.ray_embed.proj.weight.any() and not fresh.depth_emb.any()


def test_unconditioned_multimodal_model_equals_the_model_without_the_branch():
    model = randomized(seed=1)
    plain = Pi3X(pi3x_config("tiny", multimodal=False)).eval()
    missing, unexpected = plain.load_checkpoint_state(model.state_dict())
    assert missing == [] and len(unexpected) == len(model.state_dict()) - len(plain.state_dict())
    assert_same(run(model), run(plain))


def test_ray_mask_selects_the_views_and_adds_the_ray_embedding():
    model = randomized(seed=2)
    tokens = model.encode(IMGS)
    Ks = K.expand(1, 3, 3, 3)
    mask = torch.tensor([[True, False, True]])
    with torch.no_grad():
        cond = model.conditioning_inputs(1, 3, 28, 42, IMGS.device, intrinsics=Ks, mask_add_ray=mask)
        added = model.add_conditions(tokens, cond) - tokens
        rays = intrinsics_ray_map(K, 28, 42)
        expected = model.ray_embed(rays.permute(2, 0, 1)[None])[0]
    assert not added[1].any()
    torch.testing.assert_close(added[0], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(added[2], expected, atol=1e-5, rtol=1e-5)
    # explicit rays take precedence over intrinsics: rays scaled by any length give the same map
    ray3 = torch.cat([rays, torch.ones_like(rays[..., :1])], -1) * 3.0
    with torch.no_grad():
        cond2 = model.conditioning_inputs(1, 3, 28, 42, IMGS.device, intrinsics=2 * Ks,
                                          rays=ray3.expand(1, 3, 28, 42, 3))
    torch.testing.assert_close(cond2["ray_xy"], cond["ray_xy"], atol=1e-5, rtol=1e-5)
    # conditioning the tiny network on intrinsics changes its output
    assert max_diff(run(model), run(model, intrinsics=Ks)) > 1e-4


# ---------------------------------------------------------------------------------------- poses

def test_pose_normalisation_relative_to_the_first_camera_and_mean_distance():
    model = randomized()
    poses = poses_tensor(4, seed=3, scale=5.0)
    cond = model.conditioning_inputs(1, 4, 28, 42, IMGS.device, poses=poses)
    P = poses[0].double().numpy()
    rel = np.linalg.inv(P[0]) @ P
    dist = np.linalg.norm(rel[1:, :3, 3], axis=1).mean()
    rel[:, :3, 3] /= dist
    np.testing.assert_allclose(cond["poses"][0].double().numpy(), rel, atol=2e-6)
    assert cond["mask_pose"].all() and not cond["mask_ray"].any() and not cond["mask_depth"].any()
    # static cameras (all within 2 cm of the first) stay unscaled
    static = poses.clone()
    static[0, :, :3, 3] = static[0, :1, :3, 3] + torch.tensor([[0, 0, 0], [0.01, 0, 0], [0, 0.019, 0], [0, 0, 0.005]])
    cond = model.conditioning_inputs(1, 4, 28, 42, IMGS.device, poses=static)
    P = static[0].double().numpy()
    np.testing.assert_allclose(cond["poses"][0].double().numpy(), np.linalg.inv(P[0]) @ P, atol=2e-6)


def test_depth_normalisation_uses_the_mean_of_valid_depths_of_all_views():
    model = randomized()
    depths = torch.rand(1, 3, 28, 42) * 4 + 1
    depths[0, 1, :10] = 0.0
    poses = poses_tensor(3, seed=4, scale=2.0)
    mask = torch.tensor([[True, False, True]])
    cond = model.conditioning_inputs(1, 3, 28, 42, IMGS.device, poses=poses, depths=depths, mask_add_depth=mask)
    mean = depths[depths > 0].double().mean()
    torch.testing.assert_close(cond["depths"].double(), depths.double() / (mean + 1e-8), atol=1e-6, rtol=1e-6)
    P = poses[0].double().numpy()
    rel = np.linalg.inv(P[0]) @ P
    rel[:, :3, 3] /= float(mean)           # depth-masked views: no mean-distance scale
    np.testing.assert_allclose(cond["poses"][0].double().numpy(), rel, atol=2e-6)


def test_one_posed_view_is_no_pose_conditioning_bitwise_and_the_callers_mask_is_kept():
    model = randomized(seed=5)
    poses = poses_tensor(3, seed=5)
    mask = torch.tensor([[False, True, False]])
    out = run(model, poses=poses, mask_add_pose=mask)
    assert_same(out, run(model))
    assert mask.tolist() == [[False, True, False]]
    assert max_diff(run(model), run(model, poses=poses)) > 1e-4


def test_pose_conditioning_is_invariant_to_the_world_frame_and_translation_scale():
    """Upstream's D5 and D9: a rigid change of world frame and a common scale of all
    translations leave every output unchanged (to rounding)."""
    model = randomized(seed=6)
    poses = poses_tensor(3, seed=6, scale=3.0)
    base = run(model, poses=poses)
    world = torch.tensor(random_pose(np.random.default_rng(9), 10.0), dtype=torch.float32)
    moved = run(model, poses=world @ poses)
    scaled = poses.clone()
    scaled[..., :3, 3] *= 1000.0                      # millimetres
    mm = run(model, poses=scaled)
    for other in (moved, mm):
        for key in ("points", "camera_poses", "metric"):
            torch.testing.assert_close(other[key], base[key], atol=2e-4, rtol=2e-4)


def test_partly_posed_views_unposed_tokens_do_not_enter_the_posed_views_injection():
    torch.manual_seed(0)
    block = PoseInjectBlock(64, 4).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    h, w, n = 2, 3, 3
    x = torch.randn(1, n * h * w, 64)
    c2w = poses_tensor(n, seed=1)
    posed = torch.tensor([[True, True, False]])
    tok = posed.repeat_interleave(h * w, dim=1)
    mask = (tok[:, :, None] & tok[:, None, :])[:, None]
    with torch.no_grad():
        a = block(x, c2w, h, w, mask)
        x2 = x.clone()
        x2[:, 2 * h * w:] = torch.randn(1, h * w, 64)     # change the unposed view's tokens
        c2w2 = c2w.clone()
        c2w2[0, 2] = torch.eye(4)                          # and its pose
        b = block(x2, c2w2, h, w, mask)
    torch.testing.assert_close(a[:, :2 * h * w], b[:, :2 * h * w])
    assert torch.isfinite(a).all()
    # the decoder adds the update to posed views only: a partly posed run is finite and differs
    model = randomized(seed=7)
    out = run(model, poses=poses_tensor(3, seed=2), mask_add_pose=torch.tensor([[True, False, True]]))
    assert all(torch.isfinite(out[k]).all() for k in ("points", "camera_poses", "metric"))
    assert max_diff(out, run(model)) > 1e-5


def test_injection_on_the_posed_views_equals_upstreams_masked_injection_over_all_views():
    """Upstream: the block over all views' patch tokens with the posed x posed attention mask, its
    output times the pose mask (fact sheet §4); ours runs it on the posed views alone."""
    model = randomized(seed=9)
    b, n, h, w, r, c = 2, 3, 2, 3, 5, 64
    x = torch.randn(b, n, r + h * w, c)
    poses = torch.cat([poses_tensor(n, seed=1), poses_tensor(n, seed=2)])
    m = torch.tensor([[True, False, True], [True, True, True]])
    with torch.no_grad():
        ours = model._inject_poses(x, poses, [m[e].nonzero()[:, 0] for e in range(b)], 0, h, w).reshape(b, n, r + h * w, c)
        tok = m.repeat_interleave(h * w, dim=1)
        mask = (tok[:, :, None] & tok[:, None, :])[:, None]
        update = model.pose_inject_blk[0](x[:, :, r:].reshape(b, n * h * w, c), poses, h, w, mask)
        upstream = x.clone()
        upstream[:, :, r:] += update.reshape(b, n, h * w, c) * m[:, :, None, None]
    torch.testing.assert_close(ours, upstream, atol=2e-6, rtol=2e-6)
    assert torch.equal(ours[0, 1], x[0, 1])                     # the unposed view: exactly nothing


# ---------------------------------------------------------------------------------------- PRoPE

def _rope_matrix(p, n):
    """2n x 2n matrix of rho(., p) on (w1 | w2) with n frequencies of base 100 (fact sheet §6.5)."""
    m = np.zeros((2 * n, 2 * n))
    for j in range(n):
        th = p * 100.0 ** (-j / n)
        c, s = math.cos(th), math.sin(th)
        m[j, j], m[j, n + j] = c, s
        m[n + j, j], m[n + j, n + j] = -s, c
    return m


def test_prope_attention_equals_the_explicit_block_matrix_formulation():
    """PRoPE as in the paper: logits (D_t^T q_t) . (D_s^-1 k_s), values D_s^-1 v_s, output D_t o_t,
    with D = blockdiag(P (x) I_8, RoPE_x, RoPE_y) per token; built as explicit float64 matrices."""
    torch.manual_seed(1)
    heads, d = 2, 32
    attn = PRopeAttention(heads * d, heads).double().eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.add_(0.2 * torch.randn_like(p))
    h, w, n = 2, 3, 2
    x = torch.randn(1, n * h * w, heads * d, dtype=torch.float64)
    c2w = poses_tensor(n, seed=3, scale=2.0, dtype=torch.float64)   # orthonormal to 1e-16
    w2c = inverse_se3(c2w)
    with torch.no_grad():
        got = attn(x, w2c, h, w)[0].numpy()
        qkv = attn.qkv(x)[0].reshape(-1, 3, heads, d).permute(1, 2, 0, 3)
        q, k, v = attn.q_norm(qkv[0]).numpy(), attn.k_norm(qkv[1]).numpy(), qkv[2].numpy()
    tokens = n * h * w
    D = []
    for t in range(tokens):
        view, local = divmod(t, h * w)
        row, col = divmod(local, w)
        P = w2c[0, view].numpy()
        blocks = np.zeros((d, d))
        blocks[:d // 2, :d // 2] = np.kron(np.eye(d // 8), P)
        # D's RoPE blocks are rho^-1 (= rho^T): so q (D^T) and k, v (D^-1) get rho, the output rho^-1
        blocks[d // 2:3 * d // 4, d // 2:3 * d // 4] = _rope_matrix(col, d // 8).T
        blocks[3 * d // 4:, 3 * d // 4:] = _rope_matrix(row, d // 8).T
        D.append(blocks)
    out = np.zeros((tokens, heads, d))
    for hd in range(heads):
        qt = np.stack([D[t].T @ q[hd, t] for t in range(tokens)])
        ks = np.stack([np.linalg.inv(D[s]) @ k[hd, s] for s in range(tokens)])
        vs = np.stack([np.linalg.inv(D[s]) @ v[hd, s] for s in range(tokens)])
        logits = qt @ ks.T / math.sqrt(d)
        a = np.exp(logits - logits.max(1, keepdims=True))
        a /= a.sum(1, keepdims=True)
        o = a @ vs
        out[:, hd] = np.stack([D[t] @ o[t] for t in range(tokens)])
    expected = out.reshape(tokens, heads * d) @ attn.proj.weight.detach().numpy().T + attn.proj.bias.detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_pose_inject_block_is_two_parallel_branches_without_a_skip():
    torch.manual_seed(2)
    block = PoseInjectBlock(64, 4).eval()
    x = torch.randn(1, 12, 64)
    c2w = poses_tensor(2, seed=0)
    with torch.no_grad():
        got = block(x, c2w, 2, 3)
        expected = (block.ls1(block.attn(block.norm1(x), inverse_se3(c2w), 2, 3))
                    + block.ls2(block.mlp(block.norm2(x))))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert torch.equal(block.ls1.gamma, torch.full((64,), 0.01))
    assert block.attn.q_norm.eps == 1e-5 and block.norm1.eps == 1e-6


def test_conditioned_forward_under_bf16_autocast_is_finite():
    model = randomized(seed=8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(IMGS, intrinsics=K.expand(1, 3, 3, 3), poses=poses_tensor(3, seed=8),
                    mask_add_pose=torch.tensor([[True, True, False]]))
    for key in ("points", "camera_poses", "metric"):
        assert out[key].dtype == torch.float32 and torch.isfinite(out[key]).all(), key
