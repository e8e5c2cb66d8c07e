"""The CHROMM network: Pi3X + Multi-HMR + the CHROMM heads (`ChrommNetwork`), and the heads.

The heads read people from Multi-HMR head tokens fused with Pi3X decoder tokens.

Per detected head patch (found by Multi-HMR's detector on its own features):
  fused  = MLP([Multi-HMR token at the head patch, Pi3X decoder token at the same image place])
  pose   = init + MLP(fused)   52 canonical joint rotations (body 21, hands 15 + 15, jaw), 6D
  root   = init + MLP(fused)   root rotation in the camera frame, 6D
  betas, expression = init + MLP(fused)
  offset = MLP(fused)          2D head offset inside the Multi-HMR patch (patch units)
  depth  = Pi3X depth at the head pixel + MLP(fused) (metres), unprojected with Pi3X's intrinsics
  pelvis: coarse = argmax over the image's Pi3X patches of <Wq fused, Wk token>; fine = MLP([fused,
          token at the coarse patch]) -> offset inside that patch (patch units)
Per Pi3X patch: mask = MLP([Pi3X token, Multi-HMR token at that place]) -> p*p person-mask logits.

The paper (arXiv 2603.12789) gives the structure (dual encoders, MLP fusion at the head token,
two-layer SMPL-X decoders, depth residual, mask MLP, coarse-to-fine pelvis) but not the widths;
ours: fused tokens as wide as Multi-HMR's, decoder hidden layers 4x that (as Human3R's SMPL
decoders), the fusion MLP's hidden layer 2x its input. No weights are published: these heads load
from a CHROMM checkpoint (weights.py) and are otherwise not used.

6D rotations use Multi-HMR's layout (rotation_torch): the 6 numbers are the first two columns.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .configs import named_config
from .geometry import project, unproject
from .image_maps import patch_index
from .layers import Mlp
from .rotation_torch import rotation_6d_to_matrix

NUM_CANONICAL = 52  # body 21, left hand 15, right hand 15, jaw 1 (the eyes stay at zero)
NUM_BETAS = 10
NUM_EXPRESSION = 10
# Root rotation prior: an upright person facing the camera (SMPL-X +Y up -> camera -y, +Z -> -z).
UPRIGHT_ROOT_6D = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass(frozen=True)
class HeadsConfig:
    mhmr_dim: int = 1024       # Multi-HMR backbone width
    pi3x_dim: int = 2048       # Pi3X decoder feature width (two blocks concatenated)
    dim: int = 1024            # fused token width
    mlp_ratio: int = 4
    key_dim: int = 256         # pelvis coarse attention
    mask_hidden: int = 1024
    patch_size: int = 14       # both networks' patch size


HEADS_CONFIGS = {
    "full": HeadsConfig(),
    "tiny": HeadsConfig(mhmr_dim=64, pi3x_dim=128, dim=64, mlp_ratio=2, key_dim=16, mask_hidden=32),
}


def heads_config(name, **overrides):
    return named_config(HEADS_CONFIGS, name, "CHROMM heads", **overrides)


def sample_depth_median(z, img, xy, radius=2):
    """Median of z-depth maps (M, H, W) over a (2r+1)^2 pixel window at OpenCV pixels xy (D, 2).

    A median rather than one bilinear sample, so a head pixel on a silhouette edge does not take
    the background's depth.
    """
    _, height, width = z.shape
    steps = torch.arange(-radius, radius + 1, device=z.device)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    cols = (xy[:, None, 0].round().long() + dx.reshape(1, -1)).clamp(0, width - 1)
    rows = (xy[:, None, 1].round().long() + dy.reshape(1, -1)).clamp(0, height - 1)
    return z[img[:, None], rows, cols].median(dim=-1).values


def _chunks(n, size):
    return [slice(lo, lo + size) for lo in range(0, n, size)]


class ChrommHeads(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        cfg = self.config = config or HeadsConfig()
        hidden = cfg.dim * cfg.mlp_ratio
        self.fuse = Mlp(cfg.mhmr_dim + cfg.pi3x_dim, (cfg.mhmr_dim + cfg.pi3x_dim) * cfg.mlp_ratio // 2, cfg.dim)
        self.dec_pose = Mlp(cfg.dim, hidden, NUM_CANONICAL * 6)
        self.dec_root = Mlp(cfg.dim, hidden, 6)
        self.dec_betas = Mlp(cfg.dim, hidden, NUM_BETAS)
        self.dec_expression = Mlp(cfg.dim, hidden, NUM_EXPRESSION)
        self.dec_offset = Mlp(cfg.dim, hidden, 2)
        self.dec_depth = Mlp(cfg.dim, hidden, 1)
        self.pelvis_query = nn.Linear(cfg.dim, cfg.key_dim)
        self.pelvis_key = nn.Linear(cfg.pi3x_dim, cfg.key_dim)
        self.dec_pelvis = Mlp(cfg.dim + cfg.pi3x_dim, hidden, 2)
        self.mask = Mlp(cfg.pi3x_dim + cfg.mhmr_dim, cfg.mask_hidden, cfg.patch_size ** 2)
        self.register_buffer("init_pose", torch.tensor(IDENTITY_6D).repeat(NUM_CANONICAL)[None])
        self.register_buffer("init_root", torch.tensor(UPRIGHT_ROOT_6D)[None])
        self.register_buffer("init_betas", torch.zeros(1, NUM_BETAS))
        self.register_buffer("init_expression", torch.zeros(1, NUM_EXPRESSION))

    def forward(self, head_tokens, pi3x_tokens, img, head_cell, mhmr_to_pi3x, z, K, patch_hw):
        """Per-detection SMPL-X parameters and placement, all in Pi3X image pixels.

        head_tokens (D, Cm): Multi-HMR tokens at the detected head patches; pi3x_tokens (M, h*w,
        Cp): Pi3X decoder patch tokens per image (registers removed); img (D,): image of each
        detection; head_cell (D, 2): (col, row) of the head patch on Multi-HMR's grid;
        mhmr_to_pi3x: (scale (M, 2), offset (M, 2)) pixel maps from Multi-HMR's padded input to
        Pi3X's input (OpenCV pixels); z (M, H, W) Pi3X metric z-depth; K (M, 3, 3) Pi3X intrinsics.
        """
        cfg = self.config
        p = cfg.patch_size
        patch_w = patch_hw[1]
        scale, offset = mhmr_to_pi3x

        def to_pi3x(xy_mhmr):
            return xy_mhmr * scale[img] + offset[img]

        def pi3x_token_at(xy):
            row, col = patch_index(xy, patch_hw, p)
            return pi3x_tokens[img, row * patch_w + col]

        centre = to_pi3x((head_cell.float() + 0.5) * p - 0.5)
        fused = self.fuse(torch.cat([head_tokens, pi3x_token_at(centre)], dim=-1))

        head_mhmr = (head_cell.float() + 0.5 + self.dec_offset(fused)) * p - 0.5
        head_2d = to_pi3x(head_mhmr)
        depth = sample_depth_median(z, img, head_2d) + self.dec_depth(fused)[:, 0]
        head_cam = unproject(K[img], head_2d, depth)

        keys = self.pelvis_key(pi3x_tokens)                               # (M, h*w, k)
        query = self.pelvis_query(fused)
        coarse = torch.cat([torch.einsum("dk,dnk->dn", query[sl], keys[img[sl]]).argmax(dim=-1)
                            for sl in _chunks(query.shape[0], 64)]) if query.shape[0] else img
        coarse_xy = torch.stack([coarse % patch_w, coarse // patch_w], dim=-1).float()
        fine = self.dec_pelvis(torch.cat([fused, pi3x_tokens[img, coarse]], dim=-1))
        pelvis_2d = (coarse_xy + 0.5 + fine) * p - 0.5

        root = rotation_6d_to_matrix(self.init_root + self.dec_root(fused))
        pose = rotation_6d_to_matrix((self.init_pose + self.dec_pose(fused)).reshape(-1, NUM_CANONICAL, 6))
        return dict(head_2d=head_2d, pelvis_2d=pelvis_2d, head_cam=head_cam,
                    rotmats=torch.cat([root[:, None], pose], dim=1),
                    betas=self.init_betas + self.dec_betas(fused),
                    expression=self.init_expression + self.dec_expression(fused))

    def person_mask(self, pi3x_tokens, mhmr_tokens_at_pi3x, patch_hw):
        """Person-mask logits (M, H, W) at Pi3X resolution from per-patch tokens of both networks.

        pi3x_tokens (M, h*w, Cp); mhmr_tokens_at_pi3x (M, h*w, Cm): Multi-HMR tokens gathered at
        the Pi3X patch centres.
        """
        p = self.config.patch_size
        patch_h, patch_w = patch_hw
        logits = self.mask(torch.cat([pi3x_tokens, mhmr_tokens_at_pi3x], dim=-1))  # (M, h*w, p*p)
        logits = logits.reshape(-1, patch_h, patch_w, p, p).permute(0, 1, 3, 2, 4)
        return logits.reshape(-1, patch_h * p, patch_w * p)


# ----------------------------------------------------------------------------- the network

def affine(scale, offset):
    """(M, 3, 3) pixel-map matrices from per-image scale and offset (M, 2)."""
    A = torch.zeros(scale.shape[0], 3, 3, dtype=scale.dtype, device=scale.device)
    A[:, 0, 0], A[:, 1, 1] = scale[:, 0], scale[:, 1]
    A[:, :2, 2] = offset
    A[:, 2, 2] = 1.0
    return A


def head_from_pelvis(rotmats, rest_joints):
    """(D, 3) head joint minus pelvis in the camera frame, by forward kinematics down the spine.

    rotmats (D, 53, 3, 3) as Multi-HMR orders them (root, then body joints 1..21 at their index);
    rest_joints (55, 3): the neutral rest skeleton (shape is ignored, a few centimetres).
    """
    chain = (0, 3, 6, 9, 12, 15)  # pelvis, spine1, spine2, spine3, neck, head
    bones = [rest_joints[chain[k]] - rest_joints[chain[k - 1]] for k in range(1, len(chain))]
    vec = bones[-1].expand(rotmats.shape[0], 3)
    for k in range(len(chain) - 2, 0, -1):      # neck, spine3, spine2, spine1 rotate their child
        vec = bones[k - 1] + torch.einsum("dij,dj->di", rotmats[:, chain[k]], vec)
    return torch.einsum("dij,dj->di", rotmats[:, 0], vec)


def person_capsules(head_2d, pelvis_2d, head_depth, img, z, length=2.6, width=0.5, depth_band=1.0,
                    chunk=32):
    """(M, H, W) bool mask of the pixels of detected people, from head and pelvis alone.

    For the composition mode, which has no mask head: a capsule from the head along the head ->
    pelvis direction to `length` times that distance (about the feet of a standing person),
    radius `width` times it, limited to pixels whose depth is within `depth_band` metres of the
    head's. An approximation: it removes most of a person's points and a margin around them.
    """
    m, height, width_px = z.shape
    count = torch.zeros(m, height, width_px, dtype=torch.int32, device=z.device)
    ys = torch.arange(height, device=z.device, dtype=head_2d.dtype)
    xs = torch.arange(width_px, device=z.device, dtype=head_2d.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)          # (H, W, 2) as (x, y)
    axis = (pelvis_2d - head_2d) * length
    seg2 = (axis * axis).sum(-1).clamp_min(1e-6)
    radius = (width * (pelvis_2d - head_2d).norm(dim=-1)).clamp_min(2.0)
    for lo in range(0, head_2d.shape[0], chunk):  # chunks bound the (chunk, H, W) temporaries
        sl = slice(lo, lo + chunk)
        rel = grid - head_2d[sl, None, None]
        t = ((rel * axis[sl, None, None]).sum(-1) / seg2[sl, None, None]).clamp(0.0, 1.0)
        dist = (rel - t[..., None] * axis[sl, None, None]).norm(dim=-1)
        near = (z[img[sl]] - head_depth[sl, None, None]).abs() <= depth_band
        inside = (dist <= radius[sl, None, None]) & near
        count.index_add_(0, img[sl], inside.to(torch.int32))
    return count > 0


class ChrommNetwork(nn.Module):
    """Pi3X + Multi-HMR (+ CHROMM heads when given): all images of a window in one pass.

    Without heads this is the composition mode: Pi3X gives cameras, intrinsics and the scene;
    Multi-HMR, run with Pi3X's intrinsics, gives the people; each head is placed at Pi3X's depth
    at Multi-HMR's head pixel (median over 5x5 pixels), unprojected with Pi3X's intrinsics.
    """

    def __init__(self, pi3x, multihmr, heads=None, det_thresh=0.3, nms_kernel=3, mhmr_chunk=16):
        super().__init__()
        self.pi3x, self.multihmr, self.heads = pi3x, multihmr, heads
        self.det_thresh, self.nms_kernel, self.mhmr_chunk = det_thresh, nms_kernel, mhmr_chunk
        from ..body.skeleton import approximate_rest_joints

        self.register_buffer("rest_joints", torch.as_tensor(approximate_rest_joints(), dtype=torch.float32),
                             persistent=False)

    @property
    def mode(self):
        return "chromm" if self.heads is not None else "composition"

    def forward(self, pi3x_images, mhmr_images, orig_to_pi3x, orig_to_mhmr, known=None):
        """pi3x_images (M, 3, H, W) and mhmr_images (M, 3, S, S) in [0, 1], the same M images;
        orig_to_pi3x / orig_to_mhmr: (scale (M, 2), offset (M, 2)) OpenCV pixel maps from each
        original frame. Returns per-image (K, c2w, points, conf, person mask) and flat
        per-detection tensors, pixels in Pi3X's input; everything stays on the device.

        known: optional dict of what is known per image: 'K' (M, 3, 3) in Pi3X-input pixels
        (OpenCV convention) with 'K_mask' (M,) bool, 'c2w' (M, 4, 4) with 'pose_mask' (M,). Pi3X
        is conditioned on them (when it has its multimodal branch) and the known intrinsics
        replace the predicted ones for everything downstream (people, points, the take).
        """
        from .geometry import recover_intrinsics_from_rays

        out = self.pi3x(pi3x_images[None], **self._conditions(known))
        registers = self.pi3x.config.num_registers
        patch_hw = out["patch_hw"]
        with torch.autocast(pi3x_images.device.type, enabled=False):
            K = recover_intrinsics_from_rays(out["rays"][0].float())                 # (M, 3, 3)
            if known is not None and known.get("K") is not None:
                K = torch.where(known["K_mask"].view(-1, 1, 1), known["K"].to(K.dtype), K)
            z = out["local_points"][0, ..., 2].float()                                # (M, H, W)
            # Pixel maps between the two inputs, and Multi-HMR's K (edge convention) from Pi3X's.
            sp, op = orig_to_pi3x
            sm, om = orig_to_mhmr
            mhmr_to_pi3x = (sp / sm, op - sp * om / sm)
            pi3x_to_mhmr_edge = (sm / sp, om - sm * op / sp + 0.5)
            K_mhmr = affine(*pi3x_to_mhmr_edge) @ K

        feats = torch.cat([self.multihmr.features(chunk) for chunk in mhmr_images.split(self.mhmr_chunk)])
        with torch.autocast(pi3x_images.device.type, enabled=False):
            if self.heads is None:
                people = self._compose(feats, K_mhmr, K, z, mhmr_to_pi3x)
            else:
                tokens = out["decoder_tokens"][0, :, registers:].float()
                people = self._chromm(feats.float(), tokens, K, z, mhmr_to_pi3x, patch_hw)
        return dict(K=K, c2w=out["camera_poses"][0].float(), points=out["points"][0].float(),
                    conf=torch.sigmoid(out["conf"][0, ..., 0].float()), metric=out["metric"][0].float(),
                    **people)

    def _conditions(self, known):
        """Pi3X keyword arguments for the known cameras (upstream's +0.5 pixel-centre K)."""
        if not known or not getattr(self.pi3x.config, "multimodal", False):
            return {}
        kwargs = {}
        if known.get("K") is not None and bool(known["K_mask"].any()):
            K = known["K"].float().clone()
            K[:, :2, 2] += 0.5 * K[:, 2:, 2]          # OpenCV centres -> upstream's (u + 0.5, v + 0.5)
            kwargs.update(intrinsics=K[None], mask_add_ray=known["K_mask"][None])
        if known.get("c2w") is not None and int(known["pose_mask"].sum()) >= 2:
            kwargs.update(poses=known["c2w"].float()[None], mask_add_pose=known["pose_mask"][None])
        return kwargs

    def _compose(self, feats, K_mhmr, K, z, mhmr_to_pi3x):
        per_image = self.multihmr.predict_people(feats, K_mhmr, self.det_thresh, self.nms_kernel)
        img = torch.cat([torch.full_like(p["scores"], i, dtype=torch.long) for i, p in enumerate(per_image)])
        cat = {key: torch.cat([p[key] for p in per_image]) for key in
               ("scores", "head_2d", "rotmat", "betas", "expression", "head_cam")}
        scale, offset = mhmr_to_pi3x
        head_2d = (cat["head_2d"] - 0.5) * scale[img] + offset[img]              # edge -> OpenCV -> Pi3X
        depth = sample_depth_median(z, img, head_2d)
        head_cam = unproject(K[img], head_2d, depth)
        # Pelvis: Multi-HMR's own body (its metric depth) projected, so the image head-pelvis
        # length is Multi-HMR's and the scale adjustment can compare it with the scene's.
        pelvis_cam = cat["head_cam"] - head_from_pelvis(cat["rotmat"], self.rest_joints)
        pelvis_cam = torch.cat([pelvis_cam[:, :2], pelvis_cam[:, 2:].clamp_min(1e-3)], dim=-1)  # in front
        pelvis_2d = project(K[img], pelvis_cam)
        mask = person_capsules(head_2d, pelvis_2d, depth, img, z)
        return dict(det_image=img, det_score=cat["scores"], det_head_2d=head_2d, det_pelvis_2d=pelvis_2d,
                    det_head_cam=head_cam, det_rotmat=cat["rotmat"], det_betas=cat["betas"],
                    det_expression=cat["expression"], person_mask=mask, mhmr_head_cam=cat["head_cam"])

    def _chromm(self, feats, tokens, K, z, mhmr_to_pi3x, patch_hw):
        from .multihmr import suppress_non_maxima

        scores = self.multihmr.detection_scores(feats)
        kept = suppress_non_maxima(scores[:, None], self.nms_kernel)[:, 0]
        img, rows, cols = torch.nonzero(kept >= self.det_thresh, as_tuple=True)
        people = self.heads(feats[img, rows, cols], tokens, img, torch.stack([cols, rows], -1),
                            mhmr_to_pi3x, z, K, patch_hw)
        # Multi-HMR tokens at the Pi3X patch centres, for the mask head.
        p = self.heads.config.patch_size
        patch_h, patch_w = patch_hw
        r, c = torch.meshgrid(torch.arange(patch_h, device=z.device), torch.arange(patch_w, device=z.device),
                              indexing="ij")
        centres = torch.stack([(c + 0.5) * p - 0.5, (r + 0.5) * p - 0.5], dim=-1).reshape(1, -1, 2).float()
        scale, offset = mhmr_to_pi3x
        at_mhmr = (centres - offset[:, None]) / scale[:, None]                     # (M, h*w, 2)
        mr, mc = patch_index(at_mhmr, feats.shape[1:3], p)
        images = torch.arange(feats.shape[0], device=z.device)[:, None]
        mask = self.heads.person_mask(tokens, feats[images, mr, mc], patch_hw) > 0
        return dict(det_image=img, det_score=scores[img, rows, cols], det_head_2d=people["head_2d"],
                    det_pelvis_2d=people["pelvis_2d"], det_head_cam=people["head_cam"],
                    det_rotmat=people["rotmats"], det_betas=people["betas"],
                    det_expression=people["expression"], person_mask=mask)


# ------------------------------------------------------------------------------------ building

# Network configurations: the full one of the published checkpoints, and a tiny one for tests.
PRESETS = {
    "full": dict(pi3x="full", multihmr="full896", heads="full"),
    "tiny": dict(pi3x="tiny", multihmr="tiny", heads="tiny"),
}


def _part(preset, part):
    """The configuration name of one part in a network preset (or `preset` itself, a part's own name)."""
    return PRESETS.get(preset, {}).get(part, preset)


def build_pi3x(preset):
    from .pi3x import Pi3X, pi3x_config

    return Pi3X(pi3x_config(_part(preset, "pi3x")))


def build_multihmr(preset):
    from .multihmr import MultiHMR, multihmr_config

    return MultiHMR(multihmr_config(_part(preset, "multihmr")))


def build_heads(preset):
    return ChrommHeads(heads_config(_part(preset, "heads")))
