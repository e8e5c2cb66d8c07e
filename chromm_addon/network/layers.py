"""Transformer building blocks shared by the networks: SDPA attention with 2D RoPE, qk-norm,
LayerScale, MLP, the pre-norm block and the cross-attention-only block.

Module and parameter names follow the upstream Pi3 code (yyfz/Pi3) so that checkpoints load
without renaming. Attention always goes through `torch.nn.functional.scaled_dot_product_attention`,
which picks a fused kernel (flash / memory-efficient) when one applies.
"""
import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-6


class LayerScale(nn.Module):
    """Per-channel learnt scale of a residual branch."""

    def __init__(self, dim, init_values):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2."""

    def __init__(self, in_features, hidden_features=None, out_features=None, bias=True):
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


# ----------------------------------------------------------------------------------------------
# 2D rotary position embedding
# ----------------------------------------------------------------------------------------------

def patch_positions(batch, patch_h, patch_w, num_special, device):
    """RoPE positions of `num_special` leading tokens followed by a patch grid: (batch, S + h*w, 2).

    Patches get (row + 1, column + 1) in row-major order; the special (register) tokens get
    (0, 0), so no patch shares a position with them. Integer tensor, (y, x) order.
    """
    rows = torch.arange(patch_h, device=device)
    cols = torch.arange(patch_w, device=device)
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2) + 1
    special = torch.zeros(num_special, 2, dtype=grid.dtype, device=device)
    return torch.cat([special, grid], dim=0).unsqueeze(0).expand(batch, -1, -1)


def _rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def _rope_1d(x, positions, base):
    """Rotary embedding of one axis. x: (B, heads, T, D), positions: (B, T)."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim))
    angles = positions.to(torch.float32).unsqueeze(-1) * inv_freq          # (B, T, D/2)
    angles = torch.cat([angles, angles], dim=-1).unsqueeze(1)              # (B, 1, T, D)
    return x * angles.cos() + _rotate_half(x) * angles.sin()


def rope_2d(x, positions, base=100.0):
    """2D RoPE: the first half of each head's channels encodes y, the second half x.

    x: (B, heads, T, head_dim) with head_dim divisible by 4; positions: (B, T, 2) as (y, x).
    Angles are computed in float32 from the positions directly (no lookup table sized by the
    largest position, so no host-device synchronisation); the result has x's dtype.
    """
    y_half, x_half = x.float().chunk(2, dim=-1)
    out = torch.cat([_rope_1d(y_half, positions[..., 0], base), _rope_1d(x_half, positions[..., 1], base)], dim=-1)
    return out.to(x.dtype)


class RoPE2D(nn.Module):
    """Holds the frequency base; no parameters (so no state-dict keys)."""

    def __init__(self, base=100.0):
        super().__init__()
        self.base = float(base)

    def forward(self, x, positions):
        return rope_2d(x, positions, self.base)


# ----------------------------------------------------------------------------------------------
# Attention
# ----------------------------------------------------------------------------------------------

def attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v over (B, heads, T, d) tensors, by SDPA."""
    return F.scaled_dot_product_attention(q, k, v)


class SelfAttentionRope(nn.Module):
    """Multi-head self-attention: fused qkv, optional per-head LayerNorm of q and k, then RoPE."""

    def __init__(self, dim, num_heads, qk_norm=False, rope=None):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.q_norm = nn.LayerNorm(head_dim, eps=LAYER_NORM_EPS) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(head_dim, eps=LAYER_NORM_EPS) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=True)
        self.rope = rope

    def forward(self, x, pos=None):
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q).to(v.dtype), self.k_norm(k).to(v.dtype)
        if self.rope is not None:
            q, k = self.rope(q, pos), self.rope(k, pos)
        x = attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, t, c))


class CrossAttentionRope(nn.Module):
    """Multi-head attention of queries `x` to a context `y`, separate q/k/v projections, RoPE."""

    def __init__(self, dim, num_heads, rope=None):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=True)
        self.k_proj = nn.Linear(dim, dim, bias=True)
        self.v_proj = nn.Linear(dim, dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)
        self.rope = rope

    def forward(self, x, y, xpos=None, ypos=None):
        b, t, c = x.shape
        m = y.shape[1]
        heads, head_dim = self.num_heads, c // self.num_heads
        q = self.q_proj(x).reshape(b, t, heads, head_dim).transpose(1, 2)
        k = self.k_proj(y).reshape(b, m, heads, head_dim).transpose(1, 2)
        v = self.v_proj(y).reshape(b, m, heads, head_dim).transpose(1, 2)
        if self.rope is not None:
            q, k = self.rope(q, xpos), self.rope(k, ypos)
        x = attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, t, c))


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------

class BlockRope(nn.Module):
    """Pre-norm transformer block with RoPE self-attention; LayerScale when `init_values` is set."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, init_values=None, qk_norm=False, rope=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = SelfAttentionRope(dim, num_heads, qk_norm=qk_norm, rope=rope)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x, pos=None):
        x = x + self.ls1(self.attn(self.norm1(x), pos))
        return x + self.ls2(self.mlp(self.norm2(x)))


class CrossOnlyBlockRope(nn.Module):
    """Block without self-attention: x + cross_attn(norm2 x, norm_y y), then x + mlp(norm3 x)."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, rope=None):
        super().__init__()
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm_y = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.cross_attn = CrossAttentionRope(dim, num_heads, rope=rope)
        self.norm3 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, y, xpos=None, ypos=None):
        x = x + self.cross_attn(self.norm2(x), self.norm_y(y), xpos, ypos)
        return x + self.mlp(self.norm3(x))
