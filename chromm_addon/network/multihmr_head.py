"""Multi-HMR's Human Prediction Head (HPH): one query token per detected person.

Per person: the head-patch feature with its camera-ray embedding (context_dim = 1024 + 99),
plus learnt row/column query embeddings, concatenated with the mean parameters (pose 53 x 6D,
betas 10, camera 3) -> Linear -> `depth` layers of [self-attention among the persons of the same
image, cross-attention to that image's patch tokens (with learnt row/column value embeddings
added at the detected patches), FFN], all pre-norm and residual. Linear decoders add their
output to the mean parameters. Key names follow upstream (`x_attention_head.*`).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_ROTATIONS = 53  # global orient, body 21, left hand 15, right hand 15, jaw
NUM_BETAS = 10
NUM_EXPRESSION = 10


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


def _split_heads(t, heads):
    b, n, d = t.shape
    return t.reshape(b, n, heads, d // heads).transpose(1, 2)


def _merge_heads(t):
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


class PersonSelfAttention(nn.Module):
    """Self-attention among the (padded) persons of one image; `mask` (G, P) marks real ones."""

    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x, mask):
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return self.to_out(_merge_heads(out))


class CrossAttention(nn.Module):
    """Persons (queries) attend to all patch tokens of their image (keys and values)."""

    def __init__(self, dim, context_dim, heads, dim_head):
        super().__init__()
        self.heads = heads
        self.to_kv = nn.Linear(context_dim, heads * dim_head * 2, bias=False)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x, context):
        k, v = (_split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        out = F.scaled_dot_product_attention(_split_heads(self.to_q(x), self.heads), k, v)
        return self.to_out(_merge_heads(out))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        # indices 0 and 3 hold weights, as upstream's (Linear, GELU, Dropout, Linear, Dropout)
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Identity(),
                                 nn.Linear(hidden_dim, dim))

    def forward(self, x):
        return self.net(x)


class CrossAttentionLayers(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, context_dim):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PreNorm(dim, PersonSelfAttention(dim, heads, dim_head)),
                PreNorm(dim, CrossAttention(dim, context_dim, heads, dim_head)),
                PreNorm(dim, FeedForward(dim, mlp_dim)),
            ])
            for _ in range(depth)
        )

    def forward(self, x, context, mask):
        for self_attn, cross_attn, ff in self.layers:
            x = self_attn(x, mask=mask) + x
            x = cross_attn(x, context=context) + x
            x = ff(x) + x
        return x


class TokenDecoder(nn.Module):
    """Token embedding + one learnt position embedding + the attention layers."""

    def __init__(self, token_dim, dim, depth, heads, dim_head, mlp_dim, context_dim):
        super().__init__()
        self.to_token_embedding = nn.Linear(token_dim, dim)
        self.pos_embedding = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = CrossAttentionLayers(dim, depth, heads, dim_head, mlp_dim, context_dim)

    def forward(self, tokens, context, mask):
        x = self.to_token_embedding(tokens) + self.pos_embedding
        return self.transformer(x, context, mask)


def mean_pose_6d(mean_params=None):
    """(1, 318) pose init as upstream builds it: eye(3)[:, :2] flattened row-major for each of
    the 53 joints, the first 24 joints overwritten by the SPIN/SMPL mean pose (144 values) of
    `smpl_mean_params.npz` when given. Checkpoints carry the buffer, so this matters only for a
    randomly initialised network."""
    pose = torch.eye(3)[:, :2].reshape(1, 6).repeat(1, NUM_ROTATIONS)
    if mean_params is not None:
        pose[:, :24 * 6] = torch.as_tensor(np.asarray(mean_params["pose"], dtype=np.float32)).reshape(1, -1)
    return pose


class HumanPredictionHead(nn.Module):
    def __init__(self, context_dim, grid, dim=1024, depth=2, heads=8, dim_head=32, mlp_dim=1024,
                 mean_params=None):
        super().__init__()
        npose = 6 * NUM_ROTATIONS
        self.transformer = TokenDecoder(npose + NUM_BETAS + 3 + context_dim, dim, depth, heads,
                                        dim_head, mlp_dim, context_dim)
        self.decpose = nn.Linear(dim, npose)
        self.decshape = nn.Linear(dim, NUM_BETAS)
        self.deccam = nn.Linear(dim, 3)
        self.decexpression = nn.Linear(dim, NUM_EXPRESSION)
        for name in ("cross_queries_x", "cross_queries_y", "cross_values_x", "cross_values_y"):
            self.register_parameter(name, nn.Parameter(torch.randn(grid, context_dim) * 0.2))
        betas = torch.zeros(1, NUM_BETAS)
        cam = torch.zeros(1, 3)
        if mean_params is not None:
            betas = torch.as_tensor(np.asarray(mean_params["shape"], dtype=np.float32)).reshape(1, -1)
            cam = torch.as_tensor(np.asarray(mean_params["cam"], dtype=np.float32)).reshape(1, -1)
        self.register_buffer("init_body_pose", mean_pose_6d(mean_params))
        self.register_buffer("init_betas", betas)
        # upstream keeps an 11-beta (kid) init too; unused at inference but in the checkpoint
        self.register_buffer("init_betas_kid", torch.cat([betas, torch.zeros(1, 1)], 1))
        self.register_buffer("init_cam", cam)
        self.register_buffer("init_expression", torch.zeros(1, NUM_EXPRESSION))

    def forward(self, queries, context, rows, cols, image_index):
        """Decode the persons of a batch.

        queries (n, context_dim) head-patch features with ray embedding; context (B, h, w,
        context_dim) every patch of every image; rows, cols, image_index (n,) the detections.
        Returns (pose6d (n, 318), betas (n, 10), cam (n, 3), expression (n, 10), token (n, dim)),
        persons in the order given.
        """
        n = queries.shape[0]
        _, h, w, c = context.shape
        queries = queries + self.cross_queries_x[rows] + self.cross_queries_y[cols]

        # group the persons by image, padded to the largest group, with a key mask
        images, slot_image = torch.unique(image_index, return_inverse=True)
        context = context[images]  # a copy: only the images with people
        context[slot_image, rows, cols] += self.cross_values_x[rows] + self.cross_values_y[cols]
        counts = torch.bincount(slot_image, minlength=len(images))
        order = torch.argsort(slot_image, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.empty_like(order)
        slot[order] = torch.arange(n, device=order.device) - starts[slot_image[order]]
        longest = int(counts.max())
        padded = queries.new_zeros(len(images), longest, c)
        padded[slot_image, slot] = queries
        mask = torch.zeros(len(images), longest, dtype=torch.bool, device=queries.device)
        mask[slot_image, slot] = True

        inits = [self.init_body_pose, self.init_betas, self.init_cam]
        tokens = torch.cat([padded] + [i.expand(len(images), longest, -1) for i in inits], -1)
        out = self.transformer(tokens, context.reshape(len(images), h * w, c), mask)
        token = out[slot_image, slot]
        pose = self.decpose(token) + self.init_body_pose
        betas = self.decshape(token) + self.init_betas
        cam = self.deccam(token) + self.init_cam
        expression = self.decexpression(token) + self.init_expression
        return pose, betas, cam, expression, token
