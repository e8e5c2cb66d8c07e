"""DINOv2 vision transformer in plain torch, with the upstream state-dict key names.

Two flavours are in use: Pi3X's encoder (4 register tokens, antialiased position-embedding
interpolation, offset 0, no mask token) and Multi-HMR's backbone (no registers, offset 0.1, mask
token kept). `dinov2_config(name)` returns the constructor arguments of each, and of tiny variants
with the same structure for tests.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .configs import named_config
from .layers import LayerScale, Mlp

# Constructor arguments of the flavours in use; the "_tiny" ones keep the structure, not the size.
_CONFIGS = {
    "vitl14_reg4_pi3x": dict(
        img_size=518, patch_size=14, embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0,
        num_register_tokens=4, interpolate_antialias=True, interpolate_offset=0.0,
        init_values=1.0, keep_mask_token=False,
    ),
    "vitl14_multihmr": dict(
        img_size=518, patch_size=14, embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0,
        num_register_tokens=0, interpolate_antialias=False, interpolate_offset=0.1,
        init_values=1.0, keep_mask_token=True,
    ),
}
_CONFIGS["vitl14_reg4_pi3x_tiny"] = dict(_CONFIGS["vitl14_reg4_pi3x"], embed_dim=64, depth=2, num_heads=4)
_CONFIGS["vitl14_multihmr_tiny"] = dict(_CONFIGS["vitl14_multihmr"], embed_dim=64, depth=2, num_heads=4)


def dinov2_config(name):
    """Constructor keyword arguments of a named flavour (a fresh dict the caller may change)."""
    return named_config(_CONFIGS, name, "DINOv2")


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens: (B, 3, H, W) -> (B, H/p * W/p, C), row-major."""

    def __init__(self, patch_size, in_chans, embed_dim):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection, computed by SDPA."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1 x)), then x + ls2(mlp(norm2 x))."""

    def __init__(self, dim, num_heads, mlp_ratio, init_values):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT (flat block list, as `block_chunks=0`); keys as facebookresearch/dinov2.

    Input sides must be multiples of `patch_size`. The position embedding is learnt for
    `img_size` and resized bicubically to other grids exactly as upstream does.
    """

    def __init__(self, img_size=518, patch_size=14, embed_dim=1024, depth=24, num_heads=16,
                 mlp_ratio=4.0, num_register_tokens=0, interpolate_antialias=False,
                 interpolate_offset=0.1, init_values=1.0, keep_mask_token=True, in_chans=3):
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_register_tokens = num_register_tokens
        self.interpolate_antialias = interpolate_antialias
        self.interpolate_offset = interpolate_offset
        grid = img_size // patch_size

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, embed_dim))
        self.register_tokens = (
            nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim)) if num_register_tokens else None
        )
        # Upstream always creates it; Pi3X deletes it, Multi-HMR keeps it (it is in its checkpoint).
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim)) if keep_mask_token else None
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, init_values) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self):
        """Random initialisation as upstream (truncated normal 0.02, tiny cls/register tokens)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def interpolate_pos_encoding(self, x, height, width):
        """Position embedding for tokens `x` (cls + patches) of a `height` x `width` image.

        Bicubic resize of the learnt grid. With a non-zero `interpolate_offset` the resize is
        given as scale factors (grid + offset) / learnt grid, which shifts the sampling positions
        slightly (a historical kludge upstream keeps for compatibility); with offset 0 it is given
        as the output size. Computed in float32 and returned in x's dtype, as upstream.
        """
        learnt = self.pos_embed.shape[1] - 1
        if x.shape[1] - 1 == learnt and height == width:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        side = int(math.sqrt(learnt))
        rows, cols = height // self.patch_size, width // self.patch_size
        if self.interpolate_offset:
            resize = dict(scale_factor=((rows + self.interpolate_offset) / side,
                                        (cols + self.interpolate_offset) / side))
        else:
            resize = dict(size=(rows, cols))
        grid = pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, mode="bicubic", antialias=self.interpolate_antialias, **resize)
        if grid.shape[-2:] != (rows, cols):
            raise ValueError(f"position embedding resized to {tuple(grid.shape[-2:])}, expected {(rows, cols)}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([pos_embed[:, :1], grid], dim=1).to(x.dtype)

    def prepare_tokens(self, x, masks=None):
        """(B, 3, H, W) -> (B, 1 + registers + patches, C): cls, registers, patches."""
        _, _, height, width = x.shape
        x = self.patch_embed(x)
        if masks is not None:
            x = torch.where(masks.unsqueeze(-1), self.mask_token.to(x.dtype).unsqueeze(0), x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.interpolate_pos_encoding(x, height, width)
        if self.register_tokens is not None:
            x = torch.cat([x[:, :1], self.register_tokens.expand(x.shape[0], -1, -1), x[:, 1:]], dim=1)
        return x

    def forward_features(self, x, masks=None):
        """Run the blocks; returns the upstream dict (normalised cls/register/patch tokens, prenorm)."""
        x = self.prepare_tokens(x, masks)
        for block in self.blocks:
            x = block(x)
        x_norm = self.norm(x)
        first_patch = 1 + self.num_register_tokens
        return {
            "x_norm_clstoken": x_norm[:, 0],
            "x_norm_regtokens": x_norm[:, 1:first_patch],
            "x_norm_patchtokens": x_norm[:, first_patch:],
            "x_prenorm": x,
            "masks": masks,
        }

    def forward(self, x):
        """Normalised patch tokens (B, H/p * W/p, C), what both Pi3X and Multi-HMR consume."""
        return self.forward_features(x)["x_norm_patchtokens"]
