"""Camera head of Pi3 / Pi3X: per-view patch features -> camera-to-world pose (OpenCV axes).

Two residual MLP blocks per token, mean over the patch grid, a two-layer MLP, then a translation
(3) and a 9-D rotation that is projected onto SO(3) by SVD. Parameter names follow upstream.
"""
import torch
import torch.nn.functional as F
from torch import nn


class ResConvBlock(nn.Module):
    """x + relu(fc3(relu(fc2(relu(fc1 x))))) (upstream's 1x1 convolutions, written as Linear)."""

    def __init__(self, dim):
        super().__init__()
        self.res_conv1 = nn.Linear(dim, dim)
        self.res_conv2 = nn.Linear(dim, dim)
        self.res_conv3 = nn.Linear(dim, dim)

    def forward(self, x):
        y = F.relu(self.res_conv1(x))
        y = F.relu(self.res_conv2(y))
        y = F.relu(self.res_conv3(y))
        return x + y


def svd_orthogonalize(m):
    """Nearest rotation (det +1) to each 3x3 matrix after normalising its rows. m: (..., 3, 3).

    R = U diag(1, 1, det(U V^T)) V^T for m = U S V^T: the reflection, if any, is removed along the
    direction of the smallest singular value.
    """
    u, _, vh = torch.linalg.svd(F.normalize(m, dim=-1))
    det = torch.linalg.det(u @ vh)
    u = torch.cat([u[..., :2], u[..., 2:] * det[..., None, None]], dim=-1)
    return u @ vh


class CameraHead(nn.Module):
    def __init__(self, dim=512):
        super().__init__()
        self.res_conv = nn.ModuleList(ResConvBlock(dim) for _ in range(2))
        self.more_mlps = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
        self.fc_t = nn.Linear(dim, 3)
        self.fc_rot = nn.Linear(dim, 9)

    def forward(self, tokens):
        """tokens: (B, h*w, dim) patch features of B views -> (B, 4, 4) camera-to-world."""
        x = tokens
        for block in self.res_conv:
            x = block(x)
        x = self.more_mlps(x.mean(dim=1))
        translation = self.fc_t(x)
        rotation = svd_orthogonalize(self.fc_rot(x).reshape(-1, 3, 3))
        pose = torch.cat([rotation, translation.unsqueeze(-1)], dim=-1)
        bottom = torch.zeros_like(pose[:, :1])
        bottom[..., 3] = 1.0
        return torch.cat([pose, bottom], dim=1)
