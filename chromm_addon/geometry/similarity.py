"""Similarity transforms (scale, rotation, translation) and their least-squares fit (Umeyama)."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Sim3:
    """x -> scale * rotation @ x + translation."""

    scale: float = 1.0
    rotation: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))

    def apply(self, points):
        points = np.asarray(points, dtype=np.float64)
        return self.scale * points @ self.rotation.T + self.translation

    def apply_c2w(self, c2w):
        """Camera-to-world matrices (..., 4, 4) moved by this similarity (camera axes stay unit)."""
        c2w = np.asarray(c2w, dtype=np.float64)
        out = c2w.copy()
        out[..., :3, :3] = self.rotation @ c2w[..., :3, :3]
        out[..., :3, 3] = self.apply(c2w[..., :3, 3])
        return out

    def matrix(self):
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m


def umeyama(src, dst, weights=None, src_rotations=None, dst_rotations=None, with_scale=True):
    """The Sim(3) minimising sum w |dst - (s R src + t)|^2 (Umeyama 1991), with optional rotation
    pairs that add sum |R_dst - R R_src|^2 to the rotation fit (weighted to match the points' scale).

    With fewer than two distinct points the scale is left at 1.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 3)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    var_s = float(w @ np.sum(xs * xs, axis=1))
    var_d = float(w @ np.sum(xd * xd, axis=1))
    cov = (xd * w[:, None]).T @ xs  # sum w (dst - mu_d)(src - mu_s)^T
    if src_rotations is not None and len(src_rotations):
        r_pairs = np.einsum("nij,nkj->ik", np.asarray(dst_rotations, np.float64),
                            np.asarray(src_rotations, np.float64)) / len(src_rotations)
        # Same units as cov (length^2) so neither term swamps the other.
        cov = cov + max(np.sqrt(var_s * var_d), 1e-12) * r_pairs
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rotation = u @ sign @ vt
    if with_scale and var_s > 1e-12:
        scale = float(w @ np.sum(xd * (xs @ rotation.T), axis=1)) / var_s
        if not scale > 0:
            scale = 1.0
    else:
        scale = 1.0
    translation = mu_d - scale * rotation @ mu_s
    return Sim3(scale, rotation, translation)
