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


def svd_orthogonalize(m, squarings=40):
    """Nearest rotation (det +1) to each 3x3 matrix after normalising its rows. m: (..., 3, 3).

    This is upstream's SVD orthogonalisation, R = U diag(1, 1, det(U V^T)) V^T for m = U S V^T,
    computed without an SVD: R maximises tr(R^T m), which is Davenport's q-method, i.e. R comes
    from the quaternion that is the top eigenvector of a symmetric 4x4 matrix. The eigenvector is
    found by repeated squaring of that matrix shifted to be positive semi-definite (it converges
    to the projector onto the top eigenvector), in float64. Unlike torch.linalg.svd/eigh, which
    check convergence flags on the host, this never synchronises with the device.
    """
    b = F.normalize(m.to(torch.float64), dim=-1)
    trace = b.diagonal(dim1=-2, dim2=-1).sum(-1)
    z = torch.stack([b[..., 1, 2] - b[..., 2, 1], b[..., 2, 0] - b[..., 0, 2], b[..., 0, 1] - b[..., 1, 0]], dim=-1)
    eye3 = torch.eye(3, dtype=b.dtype, device=b.device)
    k = torch.cat([
        torch.cat([b + b.transpose(-1, -2) - trace[..., None, None] * eye3, z[..., :, None]], dim=-1),
        torch.cat([z[..., None, :], trace[..., None, None]], dim=-1),
    ], dim=-2)                                                   # (..., 4, 4), eigenvalues within +-sum(s)
    shift = 3.0 ** 0.5 * b.flatten(-2).norm(dim=-1)              # >= s1 + s2 + s3
    p = k + shift[..., None, None] * torch.eye(4, dtype=b.dtype, device=b.device)
    for _ in range(squarings):
        p = p @ p
        p = p / p.flatten(-2).norm(dim=-1)[..., None, None]
    column = p.diagonal(dim1=-2, dim2=-1).argmax(dim=-1)        # the projector's largest column
    q = torch.take_along_dim(p, column[..., None, None], dim=-1).squeeze(-1)
    q = F.normalize(k @ q[..., None] + shift[..., None, None] * q[..., None], dim=-2).squeeze(-1)
    v, w = q[..., :3], q[..., 3]
    vx = torch.zeros_like(b)
    vx[..., 0, 1], vx[..., 0, 2], vx[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    vx = vx - vx.transpose(-1, -2)                               # cross-product matrix [v]x
    r = (w * w - (v * v).sum(-1))[..., None, None] * eye3 + 2 * v[..., :, None] * v[..., None, :] - 2 * w[..., None, None] * vx
    return r.to(m.dtype)


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
