"""Pi3X (yyfz/Pi3): permutation-equivariant multi-view reconstruction with near-metric scale.

Frames in [0, 1] -> ImageNet normalisation -> DINOv2 ViT-L/14 (4 registers) patch tokens ->
5 learnt register tokens per view -> 36 decoder blocks alternating attention within each view
(even blocks) and across all views (odd blocks), with 2D RoPE -> the last two blocks' outputs
concatenated (2048 channels) -> point, confidence and camera decoders and a metric-scale decoder
-> convolutional point / confidence heads, camera head, metric head (all in fp32).

There is no reference view and no per-view embedding, so permuting the input views permutes the
outputs. Module and parameter names follow upstream so that `model.safetensors` of yyfz233/Pi3X
loads unchanged, including the multimodal conditioning branch (`MULTIMODAL_PREFIXES`): known
intrinsics (per-pixel rays through the zero-initialised `ray_embed`), known camera-to-world poses
(normalised by the first camera and the depth or camera-distance scale, injected into the decoder
by `pose_inject_blk`, PRoPE attention) and depths (`depth_encoder`), each with a per-view mask.
The computation follows upstream (facts in docs/network.md, "Conditioning on known cameras"); `conditioning_inputs` documents
the few deliberate deviations (masks are "given", never random; the caller's mask is not changed).
"""
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .camera_head import CameraHead
from .configs import named_config
from .conv_head import ConvHead
from .dinov2 import DinoVisionTransformer, PatchEmbed, dinov2_config
from .layers import BlockRope, CrossOnlyBlockRope, RoPE2D, patch_positions
from .prope import PoseInjectBlock, inverse_se3

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Checkpoint keys of the multimodal branch (built when `Pi3XConfig.multimodal`).
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
    multimodal: bool = True             # build the conditioning branch (upstream's default)
    pose_inject_after: tuple = (1, 9, 17, 25, 33)   # decoder blocks followed by a pose injection
    static_camera_distance: float = 0.02   # below this, normalised poses are not distance-scaled


PI3X_CONFIGS = {
    "full": Pi3XConfig(),
    # Same structure, small widths, for tests on CPU (head dims divisible by 4 for 2D RoPE).
    "tiny": Pi3XConfig(
        encoder="vitl14_reg4_pi3x_tiny", dec_dim=64, dec_depth=4, dec_heads=4, head_dim=64,
        head_depth=1, head_heads=4, camera_dim=32, metric_dim=32, metric_depth=1, metric_heads=2,
        conv_upsample=(32, 16, 16), conv_last=16, pose_inject_after=(0, 1),
    ),
}


def pi3x_config(name, **overrides):
    return named_config(PI3X_CONFIGS, name, "Pi3X", **overrides)


def intrinsics_ray_map(K, height, width):
    """(..., H, W, 2): the first two components of K^-1 (u + 0.5, v + 0.5, 1) per pixel (column u,
    row v), not divided by the third (upstream's ray input; 1 for a K whose last row is 0 0 1)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    pix = torch.stack([u + 0.5, v + 0.5, torch.ones_like(u)], dim=-1).to(device=K.device, dtype=torch.float32)
    rays = torch.einsum("...ij,hwj->...hwi", torch.inverse(K), pix)
    return rays[..., :2]


def _divide_translation(T, divisor):
    """Rigid transforms (B, N, 4, 4) with their translations divided by divisor (B, 1)."""
    out = T.clone()
    out[..., :3, 3] = T[..., :3, 3] / divisor[..., None]
    return out


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

        # Multimodal conditioning (registered here, so its keys follow register_token as upstream).
        # Its random init does not consume the global RNG (upstream's does), so the rest of a
        # random-initialised network is the same with and without it.
        if cfg.multimodal:
            with torch.random.fork_rng(devices=[]):
                self._build_multimodal(encoder_args)

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

    def _build_multimodal(self, encoder_args):
        cfg = self.config
        self.depth_encoder = DinoVisionTransformer(**dict(encoder_args, in_chans=2))
        self.depth_emb = nn.Parameter(torch.zeros(1, 1, cfg.dec_dim))
        self.ray_embed = PatchEmbed(cfg.patch_size, 2, cfg.dec_dim)
        nn.init.zeros_(self.ray_embed.proj.weight)
        nn.init.zeros_(self.ray_embed.proj.bias)
        self.pose_inject_blk = nn.ModuleList(
            PoseInjectBlock(cfg.dec_dim, cfg.dec_heads, init_values=cfg.layerscale_init)
            for _ in cfg.pose_inject_after)

    def _conv_head(self, dim_out):
        cfg = self.config
        return ConvHead(cfg.head_dim, dim_out, cfg.conv_upsample, last_conv_channels=cfg.conv_last,
                        patch_size=cfg.patch_size)

    # ------------------------------------------------------------------------------------------

    def forward(self, imgs, intrinsics=None, rays=None, poses=None, depths=None, mask_add_ray=None,
                mask_add_pose=None, mask_add_depth=None, with_prior=True):
        """imgs: (B, N, 3, H, W) in [0, 1], H and W multiples of 14; N views of one scene.

        Optional conditions (multimodal branch), per view, upstream's conventions:
          intrinsics (B, N, 3, 3) pixels of the network input, pixel centres at (u + 0.5, v + 0.5)
          rays       (B, N, H, W, 3) camera-frame ray directions (take precedence over intrinsics)
          poses      (B, N, 4, 4) camera-to-world, OpenCV axes, orthonormal rotations; any unit
          depths     (B, N, H, W) z-depth, any linear unit, <= 0 where unknown
          mask_add_* (B, N) bool: which views' conditions to use (default: the given ones); pose
                     conditioning needs at least two posed views in a batch element.
        The conditions carry no absolute scale or world frame: the outputs stay in the network's
        own frame and metric scale (align them to the given poses afterwards, as upstream does).

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
        cond = self.conditioning_inputs(b, n, height, width, imgs.device, intrinsics, rays, poses, depths,
                                        mask_add_ray, mask_add_pose, mask_add_depth, with_prior)
        if cond is not None:
            tokens = self.add_conditions(tokens, cond)
        features, pos = self.decode(tokens, b, n, patch_h, patch_w, cond)
        out = self.predict(features, pos, b, n, patch_h, patch_w)
        out["decoder_tokens"] = features.reshape(b, n, *features.shape[1:])
        out["patch_hw"] = (patch_h, patch_w)
        return out

    def encode(self, imgs):
        """(B, N, 3, H, W) in [0, 1] -> DINOv2 patch tokens (B*N, h*w, C)."""
        x = (imgs - self.image_mean) / self.image_std
        return self.encoder(x.flatten(0, 1))

    # -------------------------------------------------------------------------- conditioning

    def disable_multimodal(self):
        """Drop the conditioning branch (as upstream's `disable_multimodal`): less memory, and a
        checkpoint without those keys loads strictly."""
        for name in ("depth_encoder", "depth_emb", "ray_embed", "pose_inject_blk"):
            if hasattr(self, name):
                delattr(self, name)
        self.config = replace(self.config, multimodal=False)

    def conditioning_inputs(self, b, n, height, width, device, intrinsics=None, rays=None, poses=None,
                            depths=None, mask_add_ray=None, mask_add_pose=None, mask_add_depth=None,
                            with_prior=True):
        """Ray map, normalised poses and depths and the per-view masks (fact sheet §3.2-3.7), in
        float32; None when nothing is given (the unconditioned network, bitwise).

        Deviations from upstream, deliberate: a default mask is "given and with_prior" (upstream
        draws `rand <= p`, which can be True with probability 2^-24 for an absent modality); the
        caller's masks are copied, not changed in place by the two-posed-views rule.
        """
        given = [x is not None for x in (intrinsics if rays is None else rays, poses, depths)]
        masks = [m is not None for m in (mask_add_ray, mask_add_pose, mask_add_depth)]
        if not any(given) and not any(masks):
            return None
        if not self.config.multimodal:
            raise ValueError("this Pi3X was built without the multimodal branch; conditions cannot be used")
        f32 = dict(device=device, dtype=torch.float32)
        with torch.autocast(device.type, enabled=False):
            def mask(value, present):
                if value is not None:
                    return torch.as_tensor(value, device=device).to(torch.bool).reshape(b, n).clone()
                return torch.full((b, n), bool(present and with_prior), device=device)

            m_ray, m_pose, m_depth = (mask(v, g) for v, g in zip((mask_add_ray, mask_add_pose, mask_add_depth), given))
            # Ray map (B, N, H, W, 2).
            if rays is not None:
                rays = rays.to(**f32)
                ray_xy = rays[..., :2] / (rays[..., 2:] + 1e-6)
            elif intrinsics is not None:
                ray_xy = intrinsics_ray_map(intrinsics.to(**f32).reshape(b, n, 3, 3), height, width)
            else:
                ray_xy = torch.zeros(b, n, height, width, 2, **f32)
            # Poses: identity when absent; at least two posed views per batch element.
            poses = (torch.eye(4, **f32).expand(b, n, 4, 4) if poses is None
                     else poses.to(**f32).reshape(b, n, 4, 4))
            m_pose &= (m_pose.sum(dim=1, keepdim=True) != 1)
            # Depths: divided by the mean of the valid (> 0) depths over all views.
            depths = torch.zeros(b, n, height, width, **f32) if depths is None else depths.to(**f32)
            valid = depths > 0
            mean = torch.where(valid, depths, 0.0).sum(dim=(1, 2, 3)) / valid.sum(dim=(1, 2, 3))
            mean = torch.nan_to_num(mean, nan=1.0)
            depth_n = depths / (mean.view(b, 1, 1, 1) + 1e-8)
            rel = inverse_se3(poses[:, :1]) @ poses
            rel = _divide_translation(rel, mean.view(b, 1))
            if n > 1 and (~m_depth.any(dim=1)).any():
                dist = rel[:, 1:, :3, 3].norm(dim=-1)                              # (B, N-1)
                scale_b = dist.mean(dim=1)
                moving = dist.max(dim=1).values >= self.config.static_camera_distance
                use = ~m_depth.any(dim=1) & moving
                divisor = torch.where(use, scale_b + 1e-8, torch.ones_like(scale_b))
                rel = _divide_translation(rel, divisor.view(b, 1))
                depth_n = depth_n / divisor.view(b, 1, 1, 1)
        return dict(ray_xy=ray_xy, poses=rel, depths=depth_n, mask_ray=m_ray, mask_pose=m_pose, mask_depth=m_depth)

    def add_conditions(self, tokens, cond):
        """Patch tokens + ray embedding (masked) + depth embedding (masked), in upstream's order."""
        b, n = cond["mask_ray"].shape
        dtype = tokens.dtype
        if cond["mask_ray"].any():
            ray = self.ray_embed(cond["ray_xy"].flatten(0, 1).permute(0, 3, 1, 2))
            tokens = tokens + ray.to(dtype) * cond["mask_ray"].reshape(b * n, 1, 1).to(dtype)
        if cond["mask_depth"].any():
            d = cond["depths"].flatten(0, 1)[:, None]
            depth = self.depth_encoder(torch.cat([d, (d > 0).to(d.dtype)], dim=1)) + self.depth_emb
            tokens = tokens + depth.to(dtype) * cond["mask_depth"].reshape(b * n, 1, 1).to(dtype)
        return tokens

    def decode(self, tokens, b, n, patch_h, patch_w, cond=None):
        """Patch tokens -> features (B*N, R + h*w, 2C) and their RoPE positions (B*N, R + h*w, 2)."""
        registers = self.register_token.expand(b, n, -1, -1).flatten(0, 1).to(tokens.dtype)
        x = torch.cat([registers, tokens], dim=1)
        per_view = x.shape[1]
        r = self.config.num_registers
        pos = patch_positions(b * n, patch_h, patch_w, r, x.device)
        pos_global = pos.reshape(b, n * per_view, 2)
        inject = cond is not None and bool(cond["mask_pose"].any())
        if inject:   # per batch element, the posed views (pose injection acts on them only)
            posed = [cond["mask_pose"][e].nonzero()[:, 0] for e in range(b)]
        penultimate = None
        for i, block in enumerate(self.decoder):
            if i % 2 == 0:      # frame attention: each view on its own
                x = block(x.reshape(b * n, per_view, -1), pos)
            else:               # global attention: all views of a batch element together
                x = block(x.reshape(b, n * per_view, -1), pos_global)
            if inject and i in self.config.pose_inject_after:
                x = self._inject_poses(x.reshape(b, n, per_view, -1), cond["poses"], posed,
                                       self.config.pose_inject_after.index(i), patch_h, patch_w)
            if i == len(self.decoder) - 2:
                penultimate = x
        features = torch.cat([penultimate.reshape(b * n, per_view, -1), x.reshape(b * n, per_view, -1)], dim=-1)
        return features, pos

    def _inject_poses(self, x, poses, posed, k, patch_h, patch_w):
        """x (B, N, R + P, C) -> (B*N, R + P, C) with pose block k's output added to the posed
        views' patch tokens.

        Upstream runs the block on every view's patch tokens with an attention mask that keeps
        posed tokens among themselves, and multiplies the result by the pose mask. Running it on
        the posed views' tokens alone is the same computation (the MLP branch is per token, the
        masked attention sees posed tokens only, unposed views get nothing) without the dense
        (N*P)^2 mask, which for a 64-image window at Pi3X's full input would be about 7 GB.
        """
        r = self.config.num_registers
        x = x.clone()
        for e, views in enumerate(posed):
            if len(views) == 0:
                continue
            patches = x[e, views, r:]                                      # (n_e, P, C)
            update = self.pose_inject_blk[k](patches.reshape(1, -1, patches.shape[-1]), poses[e:e + 1, views],
                                             patch_h, patch_w)
            x[e, views, r:] = patches + update.reshape(patches.shape).to(x.dtype)
        return x.flatten(0, 1)

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
