"""Convolutional dense head (MoGe's design, as Pi3X uses it for points and confidence).

Patch tokens (B, h*w, C) -> three x2 upsampling stages -> bilinear resize to the image size ->
one small conv stack per output. Before every stage and before the outputs, two channels of
aspect-aware normalised view-plane coordinates (UV) are appended, so the head knows where on the
image plane each feature sits. Parameter names follow upstream (`upsample_blocks`, `output_block`).
"""
import torch
import torch.nn.functional as F
from torch import nn


def normalized_view_plane_uv(width, height, aspect_ratio, dtype=None, device=None):
    """(height, width, 2) UV of pixel centres; the image's diagonal spans length 2.

    The corners of the image plane are at (+-a, +-b) / sqrt(a^2 + b^2) for aspect a:b, and pixel
    centres sit half a pixel inside them.
    """
    diagonal = (1.0 + aspect_ratio ** 2) ** 0.5
    span_x, span_y = aspect_ratio / diagonal, 1.0 / diagonal
    u = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype, device=device)
    v = torch.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype, device=device)
    return torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1)


def _append_uv(x, aspect_ratio):
    uv = normalized_view_plane_uv(x.shape[-1], x.shape[-2], aspect_ratio, dtype=x.dtype, device=x.device)
    return torch.cat([x, uv.permute(2, 0, 1).unsqueeze(0).expand(x.shape[0], -1, -1, -1)], dim=1)


class ResidualConvBlock(nn.Module):
    """GroupNorm(1) -> ReLU -> conv3x3 -> GroupNorm(groups of 32 channels) -> ReLU -> conv3x3, + x."""

    def __init__(self, channels, hidden_channels):
        super().__init__()
        self.layers = nn.Sequential(
            nn.GroupNorm(1, channels),
            nn.ReLU(),
            nn.Conv2d(channels, hidden_channels, 3, padding=1, padding_mode="replicate"),
            nn.GroupNorm(hidden_channels // 32, hidden_channels),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, channels, 3, padding=1, padding_mode="replicate"),
        )

    def forward(self, x):
        return x + self.layers(x)


def _upsampler(in_channels, out_channels):
    """x2 transposed conv, then a 3x3 conv with replicate padding."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, padding_mode="replicate"),
    )


class ConvHead(nn.Module):
    """Dense prediction from patch tokens, one output map per entry of `dim_out`.

    dim_in: token channels; dim_upsample: channels after each x2 stage; each stage is followed by
    `num_res_blocks` residual blocks of hidden width `hidden_mult` x the stage width (multiples
    of 32, for the group norm); each output is conv3x3 -> ReLU -> conv1x1.
    """

    def __init__(self, dim_in, dim_out, dim_upsample=(256, 128, 64), num_res_blocks=2, hidden_mult=2,
                 last_conv_channels=32, patch_size=14):
        super().__init__()
        self.patch_size = patch_size
        widths_in = [dim_in] + list(dim_upsample[:-1])
        self.upsample_blocks = nn.ModuleList(
            nn.Sequential(
                _upsampler(w_in + 2, w_out),
                *(ResidualConvBlock(w_out, hidden_mult * w_out) for _ in range(num_res_blocks)),
            )
            for w_in, w_out in zip(widths_in, dim_upsample)
        )
        self.output_block = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim_upsample[-1] + 2, last_conv_channels, 3, padding=1, padding_mode="replicate"),
                nn.ReLU(),
                nn.Conv2d(last_conv_channels, out, kernel_size=1),
            )
            for out in dim_out
        )
        for block in self.upsample_blocks:
            # Upstream initialisation: every tap of the 2x2 transposed conv starts equal
            # (nearest-neighbour upsampling); only matters for training from scratch.
            weight = block[0][0].weight
            with torch.no_grad():
                weight.copy_(weight[:, :, :1, :1].clone().expand_as(weight))

    def forward(self, tokens, patch_h, patch_w):
        """tokens: (B, patch_h * patch_w, dim_in) -> list of (B, dim_out[i], H, W) maps."""
        height, width = patch_h * self.patch_size, patch_w * self.patch_size
        aspect = width / height
        x = tokens.transpose(1, 2).unflatten(2, (patch_h, patch_w))
        for block in self.upsample_blocks:
            x = block(_append_uv(x, aspect))
        x = F.interpolate(x, (height, width), mode="bilinear", align_corners=False)
        x = _append_uv(x, aspect)
        return [block(x) for block in self.output_block]
