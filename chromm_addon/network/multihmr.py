"""Multi-HMR (naver/multi-hmr) in plain torch: multi-person SMPL-X from one square image.

Pipeline, as upstream `Model.forward`:
  1. DINOv2 ViT-L/14 (no registers) -> normalised patch tokens on an S/14 x S/14 grid.
  2. Per patch: detection score sigmoid(mlp_classif) clamped to [1e-4, 1 - 1e-4]; optional NMS
     (k x k max-pool keeps local maxima); patches with score >= det_thresh are people, in
     row-major order per image. The detected patch holds the person's SMPL-X head joint.
  3. mlp_offset -> sub-patch offset; head pixel = ((col, row) + 0.5 + offset) * 14.
  4. Camera-ray embedding (99 channels) concatenated to every patch token -> HPH (multihmr_head).
  5. 6D -> rotation matrices (first two columns, Gram-Schmidt); depth
     d = exp(y * f / f_ref), f_ref = S / (2 tan 30 deg), clamped to [0, 50] m; the head joint in
     the camera frame is K^-1 [head pixel, 1] * d.

Pixel convention of K and of `head_2d`: upstream's, in the padded S x S input with edge
coordinates (the top-left pixel spans [0, 1], patch centres at p * 14 + 7, the default principal
point is S / 2). `image_maps.EDGE` converts to OpenCV pixel centres.

Input: RGB in [0, 1], letterboxed to S x S with black padding (`multihmr_preprocess`). ImageNet
normalisation happens inside `forward`; upstream normalises in its image loader after padding
with black, which is the same computation.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .camera_embed import ray_embedding
from .configs import named_config
from .dinov2 import DinoVisionTransformer, dinov2_config
from .multihmr_head import HumanPredictionHead
from .rotation_torch import matrix_to_axis_angle, rotation_6d_to_matrix

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
REFERENCE_FOV_DEGREES = 60.0  # Multi-HMR's focal normalisation (and default field of view)
MAX_DEPTH = 50.0
HEAD_JOINT = 15  # SMPL-X 'head', the detected keypoint


@dataclass(frozen=True)
class MultiHMRConfig:
    backbone: str = "vitl14_multihmr"   # dinov2_config name
    img_size: int = 896                 # side S of the square input
    head_dim: int = 1024                # HPH token width
    head_depth: int = 2
    head_heads: int = 8
    head_dim_head: int = 32
    head_mlp_dim: int = 1024
    camera_bands: int = 16
    camera_max_resolution: int = 64


MULTIHMR_CONFIGS = {
    "full896": MultiHMRConfig(),
    "full672": MultiHMRConfig(img_size=672),
    "tiny": MultiHMRConfig(backbone="vitl14_multihmr_tiny", img_size=112, head_dim=64, head_heads=2,
                           head_dim_head=16, head_mlp_dim=64),
}


def multihmr_config(name, **overrides):
    return named_config(MULTIHMR_CONFIGS, name, "Multi-HMR", **overrides)


def reference_focal(img_size):
    """Focal (pixels) of a 60-degree field of view across the S-pixel input."""
    return img_size / (2.0 * math.tan(math.radians(REFERENCE_FOV_DEGREES) / 2.0))


def default_intrinsics(img_size, dtype=torch.float32, device=None):
    """Upstream's default camera for the padded input: 60-degree FOV, principal point (S//2, S//2)."""
    K = torch.eye(3, dtype=dtype, device=device)
    K[0, 0] = K[1, 1] = reference_focal(img_size)
    K[0, 2] = K[1, 2] = img_size // 2
    return K


def depth_from_raw(raw, focal, img_size):
    """Network output y -> z-depth in metres: exp(y * f / f_ref), clamped to [0, 50]."""
    return torch.clamp(torch.exp(raw * (focal / reference_focal(img_size))), 0.0, MAX_DEPTH)


def raw_from_depth(depth, focal, img_size):
    """Inverse of `depth_from_raw` inside its range: y = log(d) * f_ref / f (the training target)."""
    return torch.log(depth) * (reference_focal(img_size) / focal)


def suppress_non_maxima(scores, kernel=3):
    """(B, 1, h, w) scores with every entry that is not the maximum of its k x k window zeroed
    (ties all kept), as upstream's CenterNet-style NMS; kernel <= 1 returns the scores."""
    if kernel <= 1:
        return scores
    pad = {2: 1, 4: 2}.get(kernel, (kernel - 1) // 2)
    pooled = F.max_pool2d(scores, kernel, stride=1, padding=pad)[..., :scores.shape[-2], :scores.shape[-1]]
    return scores * (pooled == scores)


class _Backbone(nn.Module):
    """Holds the ViT as `encoder`, so keys read `backbone.encoder.*` as upstream."""

    def __init__(self, config):
        super().__init__()
        self.encoder = DinoVisionTransformer(**dinov2_config(config))

    def forward(self, x):
        return self.encoder(x)


def _mlp(dim, out):
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out))


class MultiHMR(nn.Module):
    """Multi-HMR with upstream's state-dict layout; `mean_params` is the content of
    `smpl_mean_params.npz` (mapping with pose, shape, cam) for a fresh network, else not needed."""

    def __init__(self, config=None, mean_params=None):
        super().__init__()
        self.config = config = config or MultiHMRConfig()
        self.img_size = config.img_size
        self.backbone = _Backbone(config.backbone)
        self.patch_size = self.backbone.encoder.patch_size
        if config.img_size % self.patch_size:
            raise ValueError(f"Multi-HMR input size {config.img_size} is not a multiple of {self.patch_size}")
        self.grid = config.img_size // self.patch_size
        embed_dim = self.backbone.encoder.embed_dim
        self.camera_dim = 3 + 6 * config.camera_bands
        self.mlp_classif = _mlp(embed_dim, 1)
        self.mlp_offset = _mlp(embed_dim, 2)
        self.x_attention_head = HumanPredictionHead(
            embed_dim + self.camera_dim, self.grid, dim=config.head_dim, depth=config.head_depth,
            heads=config.head_heads, dim_head=config.head_dim_head, mlp_dim=config.head_mlp_dim,
            mean_params=mean_params)
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def features(self, images):
        """(B, 3, S, S) RGB in [0, 1] -> (B, S/14, S/14, C) backbone patch tokens (final LayerNorm)."""
        b, _, height, width = images.shape
        if height != width or height % self.patch_size:
            raise ValueError(f"Multi-HMR needs a square input with sides a multiple of {self.patch_size}, got {width}x{height}")
        tokens = self.backbone((images - self.image_mean) / self.image_std)
        side = height // self.patch_size
        return tokens.reshape(b, side, side, -1)

    def detection_scores(self, features):
        """(B, h, w, C) -> (B, h, w) per-patch person (head) probability."""
        return torch.sigmoid(self.mlp_classif(features.float())[..., 0]).clamp(1e-4, 1 - 1e-4)

    def forward(self, images, K, det_thresh=0.3, nms_kernel=3):
        """Detect and reconstruct the people of each image; see `predict_people`."""
        return self.predict_people(self.features(images), K, det_thresh, nms_kernel)

    def predict_people(self, features, K, det_thresh=0.3, nms_kernel=3):
        """People from backbone features (B, h, w, C) and K (B, 3, 3) of the padded S x S input.

        Returns one dict per image, n people each, in upstream's order (row-major patches):
          scores (n,), patch (n, 2) long (row, col), offset (n, 2) patch units,
          head_2d (n, 2) pixels (edge convention, see the module docstring),
          rotmat (n, 53, 3, 3), rotvec (n, 53, 3): global orient (camera frame), body 21,
            left hand 15, right hand 15, jaw; hands are full axis-angle, flat_hand_mean=True,
          betas (n, 10), expression (n, 10),
          depth_raw (n,) network output y, depth (n,) z of the head in metres,
          head_cam (n, 3) SMPL-X head joint in the camera frame (OpenCV axes), metres,
          tokens (n, C) backbone features at the head patch, head_tokens (n, head_dim) HPH output.
        The head runs in float32 (outside any autocast) as upstream's heads do.
        """
        b, h, w, _ = features.shape
        img_size = h * self.patch_size
        device_type = features.device.type
        with torch.autocast(device_type, enabled=False):
            features = features.float()
            K = K.float()
            scores = self.detection_scores(features)
            kept = suppress_non_maxima(scores[:, None], nms_kernel)[:, 0]
            image_index, rows, cols = torch.nonzero(kept >= det_thresh, as_tuple=True)
            n = image_index.shape[0]
            tokens = features[image_index, rows, cols]
            offset = self.mlp_offset(tokens)
            head_2d = (torch.stack([cols, rows], -1).to(offset.dtype) + 0.5 + offset) * self.patch_size
            if n:
                rays = ray_embedding(K, h, w, self.patch_size, self.config.camera_bands,
                                     self.config.camera_max_resolution)
                context = torch.cat([features, rays], -1)
                pose6d, betas, cam, expression, head_tokens = self.x_attention_head(
                    context[image_index, rows, cols], context, rows, cols, image_index)
            else:
                zeros = features.new_zeros
                pose6d, betas, cam = zeros(0, 318), zeros(0, 10), zeros(0, 3)
                expression, head_tokens = zeros(0, 10), zeros(0, self.config.head_dim)
            rotmat = rotation_6d_to_matrix(pose6d.reshape(n, 53, 6))
            K_det = K[image_index]
            depth_raw = cam[:, 0]
            depth = depth_from_raw(depth_raw, K_det[:, 0, 0], img_size)
            pixels = torch.cat([head_2d, torch.ones_like(head_2d[:, :1])], -1)
            head_cam = torch.einsum("nij,nj->ni", torch.linalg.inv(K_det), pixels) * depth[:, None]
            people = dict(scores=scores[image_index, rows, cols], patch=torch.stack([rows, cols], -1),
                          offset=offset, head_2d=head_2d, rotmat=rotmat, rotvec=matrix_to_axis_angle(rotmat),
                          betas=betas, expression=expression, depth_raw=depth_raw, depth=depth,
                          head_cam=head_cam, tokens=tokens, head_tokens=head_tokens)
        counts = torch.bincount(image_index, minlength=b).tolist()
        split = {k: torch.split(v, counts) for k, v in people.items()}
        return [{k: split[k][i] for k in people} for i in range(b)]
