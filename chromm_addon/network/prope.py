"""Pi3X's pose injection: PRoPE attention (projective positional encoding) and PoseInjectBlock.

Follows upstream yyfz/Pi3 @ 9fa3ddb (docs/network.md, "Conditioning on known cameras"; GTA form:
extrinsics only, no intrinsics). Per head of width d (64 in the full network) the channels split
into [0, d/2) projective (d/8 consecutive 4-vectors), [d/2, 3d/4) RoPE on the patch column and
[3d/4, d) RoPE on the patch row, with d/8 frequencies of base 100 and 0-based patch positions.
With P_n the world-to-camera matrix of token t's view:
  q: a <- P_n^T a     k, v: a <- P_n^-1 a     output: a <- P_n a      (each 4-vector a)
  q, k, v: RoPE rho(w, p);  output: rho^-1(w, p)
so the attention logit's projective part is sum_m a_q^T P_n(t) P_n(s)^-1 a_k: invariant to a rigid
change of the world frame. SE(3) inverses use the transpose (rotations must be orthonormal).

The 4x4 products run in float32 even under autocast (upstream rounds them to bf16 there, which
moves translations by ~0.03; see the fact sheet §8); SDPA runs in the qkv projection's dtype.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .layers import LAYER_NORM_EPS, LayerScale, Mlp

PROPE_BASE = 100.0


def inverse_se3(T):
    """Inverse of rigid transforms (..., 4, 4) by the transpose: [R^T, -R^T t; 0 0 0 1]."""
    R, t = T[..., :3, :3], T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    top = torch.cat([Rt, -Rt @ t], dim=-1)
    bottom = torch.zeros_like(T[..., 3:, :])
    bottom[..., 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def _rope_angles(positions, dim, dtype):
    """(T,) integer positions -> (T, dim // 2) angles p * base^(-j / (dim // 2))."""
    freqs = dim // 2
    inv = PROPE_BASE ** (-torch.arange(freqs, device=positions.device, dtype=dtype) / freqs)
    return positions.to(dtype)[:, None] * inv


def _rope(w, angles, inverse=False):
    """rho(w, p) = (cos w1 + sin w2, -sin w1 + cos w2) on w = (w1 | w2); rho^-1 with sin -> -sin."""
    w1, w2 = w.chunk(2, dim=-1)
    cos, sin = angles.cos(), angles.sin()
    if inverse:
        sin = -sin
    return torch.cat([cos * w1 + sin * w2, -sin * w1 + cos * w2], dim=-1)


def _project(x, mats):
    """x (B, H, N, P, d/2) as d/8 4-vectors; mats (B, N, 4, 4) applied to each as a column vector."""
    *lead, half = x.shape
    a = x.reshape(*lead, half // 4, 4)
    return torch.einsum("bnij,bhnpmj->bhnpmi", mats, a).reshape(*lead, half)


class PRopeAttention(nn.Module):
    """Multi-head self-attention over the patch tokens of all views, with PRoPE (GTA form)."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        if head_dim % 8:
            raise ValueError(f"PRoPE needs a head width divisible by 8, got {head_dim}")
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        # PyTorch's default eps (1e-5): upstream does not forward the block's norm to these.
        self.q_norm = nn.LayerNorm(head_dim)
        self.k_norm = nn.LayerNorm(head_dim)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x, w2c, patch_h, patch_w, attn_mask=None):
        """x (B, N*P, C) patch tokens, view-major, row-major in a view; w2c (B, N, 4, 4)."""
        b, length, c = x.shape
        n = w2c.shape[1]
        p = patch_h * patch_w
        heads, d = self.num_heads, c // self.num_heads
        q, k, v = self.qkv(x).reshape(b, length, 3, heads, d).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q).to(v.dtype), self.k_norm(k).to(v.dtype)
        dtype = v.dtype
        exact = torch.promote_types(w2c.dtype, torch.float32)     # float32, or float64 in tests
        with torch.autocast(x.device.type, enabled=False):
            w2c = w2c.to(exact)
            c2w = inverse_se3(w2c)
            rows = torch.arange(patch_h, device=x.device).repeat_interleave(patch_w)
            cols = torch.arange(patch_w, device=x.device).repeat(patch_h)
            ang_x, ang_y = _rope_angles(cols, d // 4, exact), _rope_angles(rows, d // 4, exact)

            def encode(t, mats, inverse=False):
                t = t.to(exact).reshape(b, heads, n, p, d)
                proj, rx, ry = t.split([d // 2, d // 4, d // 4], dim=-1)
                return torch.cat([_project(proj, mats), _rope(rx, ang_x, inverse), _rope(ry, ang_y, inverse)],
                                 dim=-1).reshape(b, heads, length, d)

            q = encode(q, w2c.transpose(-1, -2))
            k, v = encode(k, c2w), encode(v, c2w)
        out = F.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), attn_mask=attn_mask)
        with torch.autocast(x.device.type, enabled=False):
            out = encode(out, w2c, inverse=True)
        return self.proj(out.to(dtype).transpose(1, 2).reshape(b, length, c))


class PoseInjectBlock(nn.Module):
    """F(x) = ls1(attn(norm1 x)) + ls2(mlp(norm2 x)): two parallel branches and no skip of its own
    (the decoder adds F to the posed views' patch tokens)."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, init_values=0.01):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = PRopeAttention(dim, num_heads)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x, c2w, patch_h, patch_w, attn_mask=None):
        """x (B, N*P, C); c2w (B, N, 4, 4) the views' normalised camera-to-world poses."""
        w2c = inverse_se3(c2w.to(torch.promote_types(c2w.dtype, torch.float32)))
        return self.ls1(self.attn(self.norm1(x), w2c, patch_h, patch_w, attn_mask)) + self.ls2(self.mlp(self.norm2(x)))
