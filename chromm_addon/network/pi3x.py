"""Pi3X (yyfz/Pi3): permutation-equivariant multi-view reconstruction with near-metric scale.

Frames in [0, 1] -> ImageNet normalisation -> DINOv2 ViT-L/14 (4 registers) patch tokens ->
5 learnt register tokens per view -> 36 decoder blocks alternating attention within each view
(even blocks) and across all views (odd blocks), with 2D RoPE -> the last two blocks' outputs
concatenated (2048 channels) -> point, confidence and camera decoders and a metric-scale decoder
-> convolutional point / confidence heads, camera head, metric head (all in fp32).

There is no reference view and no per-view embedding, so permuting the input views permutes the
outputs. Module and parameter names follow upstream so that `model.safetensors` of yyfz233/Pi3X
loads unchanged. The optional multimodal conditioning branch (depth encoder, ray embedding, pose
injection) is not built: its checkpoint keys load as unused (`MULTIMODAL_PREFIXES`).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .camera_head import CameraHead
from .configs import named_config
from .conv_head import ConvHead
from .dinov2 import DinoVisionTransformer, dinov2_config
from .layers import BlockRope, CrossOnlyBlockRope, RoPE2D, patch_positions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Checkpoint keys of the multimodal branch, which this port does not build.
MULTIMODAL_PREFIXES = ("depth_encoder.", "depth_emb", "ray_embed.", "pose_inject_blk.")


def is_multimodal_key(key):
    return key.startswith(MULTIMODAL_PREFIXES)


@dataclass(frozen=True)
class Pi3XConfig:
    encoder: str = "vitl14_reg4_pi3x"   # a `dinov2_config` name; its embed_dim must be dec_dim
    patch_size: int = 14
    dec_dim: int = 1024
    dec_depth: int = 36
    dec_heads: int = 16
    num_registers: int = 5
    layerscale_init: float = 0.01
    rope_base: float = 100.0
    head_dim: int = 1024                # width of the point / confidence / camera decoders
    head_depth: int = 5
    head_heads: int = 16
    camera_dim: int = 512
    metric_dim: int = 512
    metric_depth: int = 5
    metric_heads: int = 8
    conv_upsample: tuple = (256, 128, 64)
    conv_last: int = 32
    head_chunk: int = 64                # views per convolutional-head call (bounds memory)


PI3X_CONFIGS = {
    "full": Pi3XConfig(),
    # Same structure, small widths, for tests on CPU (head dims divisible by 4 for 2D RoPE).
    "tiny": Pi3XConfig(
        encoder="vitl14_reg4_pi3x_tiny", dec_dim=64, dec_depth=4, dec_heads=4, head_dim=64,
        head_depth=1, head_heads=4, camera_dim=32, metric_dim=32, metric_depth=1, metric_heads=2,
        conv_upsample=(32, 16, 16), conv_last=16,
    ),
}


def pi3x_config(name, **overrides):
    return named_config(PI3X_CONFIGS, name, "Pi3X", **overrides)


def _at_least_fp32(x):
    """Heads compute in float32 (float64 stays float64, for tests)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


class TransformerDecoder(nn.Module):
    """Linear in -> RoPE transformer blocks (no LayerScale, no qk-norm) -> Linear out."""

    def __init__(self, in_dim, dim, depth, num_heads, out_dim, rope):
        super().__init__()
        self.projects = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(BlockRope(dim, num_heads, rope=rope) for _ in range(depth))
        self.linear_out = nn.Linear(dim, out_dim)

    def forward(self, x, pos):
        x = self.projects(x)
        for block in self.blocks:
            x = block(x, pos)
        return self.linear_out(x)


class ContextOnlyTransformerDecoder(nn.Module):
    """Queries that only cross-attend to a context (no self-attention), then Linear out."""

    def __init__(self, in_dim, dim, depth, num_heads, out_dim, rope):
        super().__init__()
        self.projects_x = nn.Linear(in_dim, dim)
        self.projects_y = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(CrossOnlyBlockRope(dim, num_heads, rope=rope) for _ in range(depth))
        self.linear_out = nn.Linear(dim, out_dim)

    def forward(self, x, context, xpos, ypos):
        x, context = self.projects_x(x), self.projects_y(context)
        for block in self.blocks:
            x = block(x, context, xpos, ypos)
        return self.linear_out(x)


class Pi3X(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        cfg = self.config = config or Pi3XConfig()
        encoder_args = dinov2_config(cfg.encoder)
        if encoder_args["embed_dim"] != cfg.dec_dim or encoder_args["patch_size"] != cfg.patch_size:
            raise ValueError(f"encoder {cfg.encoder!r} does not match the decoder width / patch size")

        # Encoder: DINOv2 with 4 registers; Pi3X drops its mask token.
        self.encoder = DinoVisionTransformer(**encoder_args)

        # Decoder: alternating frame / global attention over register + patch tokens.
        self.rope = RoPE2D(cfg.rope_base)
        self.decoder = nn.ModuleList(
            BlockRope(cfg.dec_dim, cfg.dec_heads, init_values=cfg.layerscale_init, qk_norm=True, rope=self.rope)
            for _ in range(cfg.dec_depth)
        )
        self.register_token = nn.Parameter(torch.randn(1, 1, cfg.num_registers, cfg.dec_dim) * 1e-6)

        # Heads: each reads the concatenation of the last two decoder blocks' outputs.
        feat = 2 * cfg.dec_dim
        self.point_decoder = TransformerDecoder(feat, cfg.head_dim, cfg.head_depth, cfg.head_heads, cfg.head_dim, self.rope)
        self.point_head = self._conv_head(dim_out=(2, 1))     # xy on the z = 1 plane, log depth
        self.conf_decoder = TransformerDecoder(feat, cfg.head_dim, cfg.head_depth, cfg.head_heads, cfg.head_dim, self.rope)
        self.conf_head = self._conv_head(dim_out=(1,))
        self.camera_decoder = TransformerDecoder(feat, cfg.head_dim, cfg.head_depth, cfg.head_heads, cfg.camera_dim, self.rope)
        self.camera_head = CameraHead(cfg.camera_dim)
        self.metric_token = nn.Parameter(torch.randn(1, 1, feat) * 1e-6)
        self.metric_decoder = ContextOnlyTransformerDecoder(
            feat, cfg.metric_dim, cfg.metric_depth, cfg.metric_heads, cfg.metric_dim, self.rope)
        self.metric_head = nn.Linear(cfg.metric_dim, 1)

        # ImageNet normalisation happens in the model (the buffers are in the checkpoint).
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def _conv_head(self, dim_out):
        cfg = self.config
        return ConvHead(cfg.head_dim, dim_out, cfg.conv_upsample, last_conv_channels=cfg.conv_last,
                        patch_size=cfg.patch_size)

    # ------------------------------------------------------------------------------------------

    def forward(self, imgs):
        """imgs: (B, N, 3, H, W) in [0, 1], H and W multiples of 14; N views of one scene.

        Returns a dict (B batch, N views):
          points        (B, N, H, W, 3) world points, metric
          local_points  (B, N, H, W, 3) camera-frame points, metric
          rays          (B, N, H, W, 3) unit ray directions in the camera frame
          conf          (B, N, H, W, 1) confidence logits (sigmoid for a probability)
          camera_poses  (B, N, 4, 4)    camera-to-world, OpenCV axes, metric translation
          metric        (B,)            scale applied to the three metric outputs
          decoder_tokens (B, N, R + h*w, 2048) the decoder features the heads read (R registers)
          patch_hw      (h, w)          the patch grid
        Wrap the call in `torch.autocast(device_type, torch.bfloat16)` for bf16 inference; the
        dense, camera and metric heads always run in float32.
        """
        b, n, _, height, width = imgs.shape
        p = self.config.patch_size
        if height % p or width % p:
            raise ValueError(f"image size {height}x{width} is not a multiple of the patch size {p}")
        patch_h, patch_w = height // p, width // p

        tokens = self.encode(imgs)
        features, pos = self.decode(tokens, b, n, patch_h, patch_w)
        out = self.predict(features, pos, b, n, patch_h, patch_w)
        out["decoder_tokens"] = features.reshape(b, n, *features.shape[1:])
        out["patch_hw"] = (patch_h, patch_w)
        return out

    def encode(self, imgs):
        """(B, N, 3, H, W) in [0, 1] -> DINOv2 patch tokens (B*N, h*w, C)."""
        x = (imgs - self.image_mean) / self.image_std
        return self.encoder(x.flatten(0, 1))

    def decode(self, tokens, b, n, patch_h, patch_w):
        """Patch tokens -> features (B*N, R + h*w, 2C) and their RoPE positions (B*N, R + h*w, 2)."""
        registers = self.register_token.expand(b, n, -1, -1).flatten(0, 1).to(tokens.dtype)
        x = torch.cat([registers, tokens], dim=1)
        per_view = x.shape[1]
        pos = patch_positions(b * n, patch_h, patch_w, self.config.num_registers, x.device)
        pos_global = pos.reshape(b, n * per_view, 2)
        penultimate = None
        for i, block in enumerate(self.decoder):
            if i % 2 == 0:      # frame attention: each view on its own
                x = block(x.reshape(b * n, per_view, -1), pos)
            else:               # global attention: all views of a batch element together
                x = block(x.reshape(b, n * per_view, -1), pos_global)
            if i == len(self.decoder) - 2:
                penultimate = x
        features = torch.cat([penultimate.reshape(b * n, per_view, -1), x.reshape(b * n, per_view, -1)], dim=-1)
        return features, pos

    def predict(self, features, pos, b, n, patch_h, patch_w):
        """Decoder features -> the output dict (without decoder_tokens / patch_hw)."""
        r = self.config.num_registers
        height, width = patch_h * self.config.patch_size, patch_w * self.config.patch_size
        point_tokens = self.point_decoder(features, pos)
        camera_tokens = self.camera_decoder(features, pos)
        pos_global = pos.reshape(b, -1, 2)
        metric_tokens = self.metric_decoder(
            self.metric_token.expand(b, -1, -1).to(features.dtype), features.reshape(b, -1, features.shape[-1]),
            pos_global[:, :1], pos_global)      # the query sits at a register position, (0, 0)
        conf_tokens = self.conf_decoder(features, pos)

        with torch.autocast(device_type=features.device.type, enabled=False):
            def dense(head, tokens):
                maps = self._chunked(head, _at_least_fp32(tokens[:, r:]), patch_h, patch_w)
                return [m.permute(0, 2, 3, 1).reshape(b, n, height, width, -1) for m in maps]

            xy, log_z = dense(self.point_head, point_tokens)
            z = torch.exp(log_z.clamp(max=15.0))
            local_points = torch.cat([xy * z, z], dim=-1)
            rays = F.normalize(torch.cat([xy, torch.ones_like(z)], dim=-1), dim=-1)

            camera_poses = self.camera_head(_at_least_fp32(camera_tokens[:, r:])).reshape(b, n, 4, 4)
            metric = self.metric_head(_at_least_fp32(metric_tokens)).reshape(b).exp()
            (conf,) = dense(self.conf_head, conf_tokens)

            scale = metric.view(b, 1, 1, 1, 1)
            rotation, translation = camera_poses[..., :3, :3], camera_poses[..., :3, 3]
            points = torch.einsum("bnij,bnhwj->bnhwi", rotation, local_points) + translation[:, :, None, None]
            camera_poses = torch.cat([
                torch.cat([rotation, translation.unsqueeze(-1) * metric.view(b, 1, 1, 1)], dim=-1),
                camera_poses[..., 3:, :],
            ], dim=-2)
            return dict(points=points * scale, local_points=local_points * scale, rays=rays, conf=conf,
                        camera_poses=camera_poses, metric=metric)

    def _chunked(self, head, tokens, patch_h, patch_w):
        """Run a convolutional head over at most `head_chunk` views at a time."""
        parts = [head(chunk, patch_h, patch_w) for chunk in tokens.split(self.config.head_chunk)]
        if len(parts) == 1:
            return parts[0]
        return [torch.cat(maps, dim=0) for maps in zip(*parts)]

    # ------------------------------------------------------------------------------------------

    def load_checkpoint_state(self, state_dict, assign=False):
        """Load an upstream state dict; returns (missing, unexpected) key lists.

        Shapes must match exactly (ValueError naming the keys otherwise). Keys this port does
        not build, such as the multimodal branch (`is_multimodal_key`), come back as unexpected.
        """
        own = self.state_dict()
        mismatched = [
            f"{key} {tuple(value.shape)} (model {tuple(own[key].shape)})"
            for key, value in state_dict.items() if key in own and tuple(value.shape) != tuple(own[key].shape)
        ]
        if mismatched:
            more = f" and {len(mismatched) - 3} more" if len(mismatched) > 3 else ""
            raise ValueError(f"Pi3X shape mismatch: {', '.join(mismatched[:3])}{more}")
        result = self.load_state_dict(state_dict, strict=False, assign=assign)
        return list(result.missing_keys), list(result.unexpected_keys)
