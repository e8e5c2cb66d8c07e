"""Multi-HMR's camera embedding: per-patch viewing rays, Fourier-encoded (99 channels).

The rays are K^-1 [u, v, 1] at the centres of the patches. Upstream builds the pixel grid with
the row index first and feeds it as u (an x/y transpose); the trained weights expect exactly
that, so it is reproduced here: u = row * patch + patch // 2, v = col * patch + patch // 2.
"""
import math

import torch


def patch_rays(K, rows, cols, patch_size=14):
    """(B, rows, cols, 3) rays with z = 1 at the patch centres, upstream's (row, col) -> (u, v)."""
    r = torch.arange(rows, device=K.device, dtype=K.dtype)
    c = torch.arange(cols, device=K.device, dtype=K.dtype)
    grid = torch.stack(torch.meshgrid(r, c, indexing="ij"), -1) * patch_size + patch_size // 2
    pixels = torch.cat([grid, torch.ones_like(grid[..., :1])], -1)  # (rows, cols, 3)
    return torch.einsum("bij,rcj->brci", torch.linalg.inv(K), pixels)


def fourier_embedding(pos, num_bands=16, max_resolution=64):
    """(..., D) -> (..., D + 2 * D * num_bands): [pos, sin(pi pos_d f_k), cos(pi pos_d f_k)],
    frequencies f_k linear from 1 to max_resolution / 2, d-major then k (Perceiver style)."""
    freqs = torch.linspace(1.0, max_resolution / 2, num_bands, device=pos.device, dtype=pos.dtype)
    scaled = (pos[..., :, None] * freqs).flatten(-2) * math.pi
    return torch.cat([pos, torch.sin(scaled), torch.cos(scaled)], -1)


def ray_embedding(K, rows, cols, patch_size=14, num_bands=16, max_resolution=64):
    """(B, rows, cols, 3 + 6 * num_bands) camera embedding of every patch (99 channels)."""
    return fourier_embedding(patch_rays(K, rows, cols, patch_size), num_bands, max_resolution)
