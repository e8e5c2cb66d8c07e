"""NetworkRunner: frames of one window (all views) -> a views file (contract 3).

All V x T images of a window go through Pi3X together (the multi-view, multi-frame set CHROMM
reconstructs jointly), then Multi-HMR in chunks, then the CHROMM heads or the composition of the
two networks' own outputs. On CUDA the backbones run in bf16 autocast with SDPA attention and the
heads in float32; tensors stay on the device until the single transfer at the end.
"""

import math
import os

import numpy as np

from ..errors import ChrommError
from ..io.views import Views, make_meta
from . import weights as w
from .interface import WEIGHTS_HINT as HINT, check_device, check_weights
from .image_maps import multihmr_map, resize_map
from .preprocess import PIXEL_LIMIT

TINY_PIXEL_LIMIT = 14 * 14 * 12  # the tiny network's Pi3X input, 56 x 42 for 16:9 frames

def resolve_device(device="auto"):
    """A torch.device for 'auto', 'cpu', 'cuda' or 'cuda:N' (checked by interface.check_device)."""
    import torch

    device = check_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _has_non_persistent_buffers(module):
    return bool({name for name, _ in module.named_buffers()} - set(module.state_dict()))


def _build_with_weights(builder, preset, sources, kind, device):
    """Build a component and load it from [(path, key prefix in that file, state)]; later sources
    override earlier ones' keys (a CHROMM checkpoint's fine-tuned backbone over the upstream file).

    Built on the meta device and handed the checkpoint's tensors when the module has no buffers
    outside its state dict, so the weights are allocated once, on the target device.
    """
    import torch

    with torch.device("meta"):
        module = builder(preset)
    if _has_non_persistent_buffers(module):
        with torch.device(device):
            module = builder(preset)
    if w.lacks_optional_part(kind, [k for _, _, part in sources for k in part]):
        module.disable_multimodal()    # a Pi3X file without the conditioning branch
    expected = w.module_shapes(module)
    state = {}
    for path, prefix, part in sources:     # shape errors name the file the key came from
        w.match_shapes(expected, {k: tuple(v.shape) for k, v in part.items()}, path,
                       w.UNUSED_PREFIXES.get(kind, ()), prefix)
        state.update(part)
    path, prefix, _ = sources[0]
    report = w.load_into(module, state, path, kind, device=device, key_prefix=prefix)
    return module.to(device).eval(), report


class NetworkRunner:
    """The network with its weights on a device; `run_window` turns frames into a Views object.
    Implements `interface.Runner`.

    weights_dir: folder of the checkpoint files (weights.find_weight_files; None: the default
    folder); tiny=True: the tiny configuration, whose checkpoints have tiny shapes; use_heads:
    None uses CHROMM's heads when the CHROMM checkpoint is there, True requires them, False runs
    the composition. `random()` and `tiny()` build random-initialised networks instead (tests, CI,
    benchmarks).
    """

    def __init__(self, weights_dir=None, device="auto", tiny=False, seed=0, det_thresh=0.3,
                 conf_thresh=0.1, points_per_image=2000, mhmr_chunk=16, pixel_limit=None, use_heads=None):
        from .chromm import build_heads, build_multihmr, build_pi3x

        self._configure(device, tiny, conf_thresh, points_per_image, pixel_limit)
        pi3x, mhmr, heads = self._load(weights_dir, use_heads, build_pi3x, build_multihmr, build_heads)
        self._assemble(pi3x, mhmr, heads, det_thresh, mhmr_chunk)

    def _configure(self, device, tiny, conf_thresh=0.1, points_per_image=2000, pixel_limit=None):
        self.device = resolve_device(device)
        self.preset = "tiny" if tiny else "full"
        # Pi3X's input pixel budget: upstream's for the full network, a small one for the tiny.
        self.pixel_limit = pixel_limit or (TINY_PIXEL_LIMIT if tiny else PIXEL_LIMIT)
        self.conf_thresh, self.points_per_image = conf_thresh, points_per_image
        self.hashes, self.reports = {}, {}

    def _assemble(self, pi3x, mhmr, heads, det_thresh, mhmr_chunk):
        from .chromm import ChrommNetwork

        self.network = ChrommNetwork(pi3x.eval(), mhmr.eval(), heads, det_thresh=det_thresh,
                                     mhmr_chunk=mhmr_chunk).to(self.device).eval()
        self.mhmr_size = mhmr.config.img_size
        self.model_name = "chromm" if heads is not None else "composition(pi3x+multihmr)"
        self.name = "chromm" if heads is not None else "composition"

    @classmethod
    def tiny(cls, seed=0, device="cpu", **kwargs):
        """Random-initialised tiny network (composition mode), for tests and CI."""
        runner = cls.random(tiny=True, seed=seed, device=device, **kwargs)
        runner.name = "tiny"
        return runner

    @classmethod
    def random(cls, tiny=False, seed=0, device="auto", with_heads=False, det_thresh=0.3, mhmr_chunk=16,
               **kwargs):
        """Random-initialised network (speed does not depend on the weights: benchmarks)."""
        import torch

        from .chromm import build_heads, build_multihmr, build_pi3x

        runner = cls.__new__(cls)
        runner._configure(device, tiny, **kwargs)
        with torch.random.fork_rng(devices=[]), torch.device(runner.device):
            torch.manual_seed(seed)
            pi3x, mhmr = build_pi3x(runner.preset), build_multihmr(runner.preset)
            heads = build_heads(runner.preset) if with_heads else None
        runner._assemble(pi3x, mhmr, heads, det_thresh, mhmr_chunk)
        return runner

    def window_size(self, image_hw, num_views):
        return estimate_window_size(self.device, image_hw, num_views)

    def _load(self, weights_dir, use_heads, build_pi3x, build_multihmr, build_heads):
        check_weights(weights_dir, chromm=bool(use_heads))
        files = w.find_weight_files(weights_dir)
        if use_heads is False:
            files.chromm = None
        chromm_parts = {"pi3x": {}, "multihmr": {}, "heads": {}}
        if files.chromm:
            meta = w.check_chromm_metadata(files.chromm)
            if meta.get("heads_preset") != self.preset:
                raise ChrommError(f"{files.chromm}: heads for the {meta.get('heads_preset')!r} "
                                  f"configuration, the network is {self.preset!r}; {HINT}")
            chromm_parts = w.split_chromm_state(w.read_state_dict(files.chromm, "chromm"), files.chromm)
        dev = self.device
        pi3x_sources = [(files.pi3x, "", w.read_state_dict(files.pi3x, "pi3x", device=dev))]
        mhmr_sources = [(files.multihmr, "", w.read_state_dict(files.multihmr, "multihmr"))]
        for kind, sources in (("pi3x", pi3x_sources), ("multihmr", mhmr_sources)):
            if chromm_parts[kind]:
                sources.append((files.chromm, f"{kind}.", chromm_parts[kind]))
        pi3x, self.reports["pi3x"] = _build_with_weights(build_pi3x, self.preset, pi3x_sources, "pi3x", dev)
        del pi3x_sources
        mhmr, self.reports["multihmr"] = _build_with_weights(build_multihmr, self.preset, mhmr_sources,
                                                             "multihmr", dev)
        del mhmr_sources
        heads = None
        if files.chromm:
            heads, self.reports["heads"] = _build_with_weights(
                build_heads, self.preset, [(files.chromm, "heads.", chromm_parts["heads"])], "chromm", dev)
        for kind in ("pi3x", "multihmr", "chromm"):
            path = getattr(files, kind)
            if path:
                self.hashes[os.path.relpath(path, files.folder)] = w.sha256_file(path)
        return pi3x, mhmr, heads

    # ------------------------------------------------------------------------------------------

    def run_window(self, frames, view_names, fps, cameras=None):
        """frames: one uint8 RGB array (T, H, W, 3) per view (sizes may differ between views).

        cameras: optional, per view, what is known (an object with `K` (3, 3) in pixels of the
        view's frames, already undistorted, and `c2w` (4, 4), either None) or None: the network
        is conditioned on it and the known intrinsics are the views' intrinsics.

        Returns Views: cameras, all detections (pixels of the original frames) and scene points
        (confidence-filtered, people removed, subsampled), in Pi3X's world frame, metric scale.
        """
        import torch

        from .multihmr_preprocess import letterbox_frames
        from .preprocess import frames_to_tensor, pi3x_image_size, resize_frames
        frames = [np.asarray(f) for f in frames]
        view_names = list(view_names)
        _check_window(frames, view_names)
        num_views, num_times = len(frames), frames[0].shape[0]
        sizes = [(f.shape[2], f.shape[1]) for f in frames]                        # (W, H) per view
        pi3x_wh = pi3x_image_size(*sizes[0], pixel_limit=self.pixel_limit)
        dev = self.device
        small = np.concatenate([resize_frames(f, pi3x_wh) for f in frames])        # (M, h, w, 3)
        pi3x_in = frames_to_tensor(small, dev)
        mhmr_in = torch.cat([letterbox_frames(f, self.mhmr_size, dev) for f in frames])
        maps_p = [resize_map(s, pi3x_wh) for s in sizes]
        maps_m = [multihmr_map(s, self.mhmr_size) for s in sizes]

        def per_image(values):
            return torch.tensor(np.repeat(np.asarray(values, dtype=np.float32), num_times, axis=0), device=dev)

        orig_to_pi3x = (per_image([m.scale for m in maps_p]), per_image([m.offset for m in maps_p]))
        orig_to_mhmr = (per_image([m.scale for m in maps_m]), per_image([m.offset for m in maps_m]))

        known = _known_per_image(cameras, num_views, num_times, orig_to_pi3x, dev)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")
        with torch.inference_mode(), autocast:
            out = self.network(pi3x_in, mhmr_in, orig_to_pi3x, orig_to_mhmr, known=known)
        with torch.inference_mode():
            result = _finite_detections(_to_original(out, orig_to_pi3x))
            picked = self._scene_points(out)
            host = {k: v.cpu().numpy() for k, v in {**result, **picked}.items()}
        if not (np.isfinite(host["K"]).all() and np.isfinite(host["c2w"]).all()):
            raise ChrommError(f"window of views {', '.join(view_names)}: the network produced non-finite "
                              f"cameras (damaged weights?); {HINT}")

        colors = small.reshape(-1, 3)[host.pop("point_flat")]
        meta = make_meta(fps, view_names, model=self.model_name, weights=self.hashes,
                         preset=self.preset, pi3x_input_size=list(pi3x_wh), multihmr_input_size=self.mhmr_size)
        return Views(
            meta=meta, image_size=np.array(sizes, dtype=np.int32),
            cam_K=host["K"].reshape(num_views, num_times, 3, 3).astype(np.float32),
            cam_c2w=host["c2w"].reshape(num_views, num_times, 4, 4).astype(np.float32),
            det_view=(host["img"] // num_times).astype(np.int32), det_time=(host["img"] % num_times).astype(np.int32),
            det_score=host["score"].astype(np.float32), det_head_2d=host["head_2d"].astype(np.float32),
            det_pelvis_2d=host["pelvis_2d"].astype(np.float32), det_head_cam=host["head_cam"].astype(np.float32),
            det_rotvec=host["rotvec"].astype(np.float32), det_betas=host["betas"].astype(np.float32),
            det_expression=host["expression"].astype(np.float32),
            points=host["points"].astype(np.float32), colors=colors.astype(np.uint8),
            point_view=(host["point_img"] // num_times).astype(np.int32),
            point_time=(host["point_img"] % num_times).astype(np.int32),
            point_conf=host["point_conf"].astype(np.float32))

    def _scene_points(self, out):
        """Confident, person-free scene points on a regular pixel subsample of every image."""
        import torch

        points, conf, mask = out["points"], out["conf"], out["person_mask"]
        m, height, width = conf.shape
        stride = max(1, math.ceil(math.sqrt(height * width / max(1, self.points_per_image))))
        keep = torch.zeros_like(mask)
        keep[:, ::stride, ::stride] = True
        keep &= (conf > self.conf_thresh) & ~mask & torch.isfinite(points).all(-1)
        flat = keep.reshape(-1).nonzero()[:, 0]
        return dict(points=points.reshape(-1, 3)[flat], point_conf=conf.reshape(-1)[flat],
                    point_img=flat // (height * width), point_flat=flat)


def _known_per_image(cameras, num_views, num_times, orig_to_pi3x, dev):
    """Known intrinsics (mapped into Pi3X's input) and poses, repeated over each view's images."""
    import torch

    from .chromm import affine

    if not cameras or all(c is None for c in cameras):
        return None
    if len(cameras) != num_views:
        raise ChrommError(f"window: {len(cameras)} known cameras for {num_views} views")
    Ks = np.repeat([np.eye(3) if c is None or c.K is None else np.asarray(c.K, np.float64) for c in cameras],
                   num_times, axis=0)
    poses = np.repeat([np.eye(4) if c is None or c.c2w is None else np.asarray(c.c2w, np.float64) for c in cameras],
                      num_times, axis=0)
    K_mask = np.repeat([c is not None and c.K is not None for c in cameras], num_times)
    pose_mask = np.repeat([c is not None and c.c2w is not None for c in cameras], num_times)
    K = affine(*orig_to_pi3x) @ torch.tensor(Ks, dtype=torch.float32, device=dev)
    return dict(K=K, K_mask=torch.tensor(K_mask, device=dev),
                c2w=torch.tensor(poses, dtype=torch.float32, device=dev), pose_mask=torch.tensor(pose_mask, device=dev))


def _to_original(out, orig_to_pi3x):
    """Pixels and intrinsics from Pi3X's input back to the original frames."""
    import torch

    from .rotation_torch import matrix_to_axis_angle

    scale, offset = orig_to_pi3x
    img = out["det_image"]
    inv = torch.zeros_like(out["K"])
    inv[:, 0, 0], inv[:, 1, 1] = 1.0 / scale[:, 0], 1.0 / scale[:, 1]
    inv[:, :2, 2] = -offset / scale
    inv[:, 2, 2] = 1.0
    return dict(
        K=inv @ out["K"], c2w=out["c2w"], img=img, score=out["det_score"],
        head_2d=(out["det_head_2d"] - offset[img]) / scale[img],
        pelvis_2d=(out["det_pelvis_2d"] - offset[img]) / scale[img],
        head_cam=out["det_head_cam"], rotvec=matrix_to_axis_angle(out["det_rotmat"]),
        betas=out["det_betas"], expression=out["det_expression"])


DETECTION_KEYS = ("img", "score", "head_2d", "pelvis_2d", "head_cam", "rotvec", "betas", "expression")


def _finite_detections(result):
    """Drop detections with a non-finite value (a degenerate depth or rotation) on the device."""
    import torch

    ok = torch.ones_like(result["score"], dtype=torch.bool)
    for key in DETECTION_KEYS[1:]:
        finite = torch.isfinite(result[key])
        ok &= finite.flatten(1).all(dim=-1) if finite.dim() > 1 else finite
    return {k: (v[ok] if k in DETECTION_KEYS else v) for k, v in result.items()}


def _check_window(frames, view_names):
    if not frames or len(frames) != len(view_names):
        raise ChrommError(f"window: {len(frames)} frame stacks for {len(view_names)} view names")
    times = frames[0].shape[0] if frames[0].ndim == 4 else 0
    for name, f in zip(view_names, frames):
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
            raise ChrommError(f"view {name!r}: frames must be uint8 RGB (T, H, W, 3), got {f.dtype} {f.shape}")
        if f.shape[0] != times or times == 0:
            raise ChrommError(f"view {name!r}: {f.shape[0]} frames, the window has {times}")


# Activation memory per image of a window, bf16, at Pi3X's ~255k-pixel input plus Multi-HMR's
# chunked 896 pass: upstream's benchmark measures 68.9 MB per image for Pi3X at 378x672
# (benchmark_pi3x.json); 1.5x margin for our point/mask post-processing and the allocator.
BYTES_PER_IMAGE = int(68.9e6 * 1.5)
FIXED_RESERVE = int(4e9)  # one Multi-HMR chunk at 896, intermediate buffers, fragmentation


def estimate_window_size(device, image_hw, num_views, max_timesteps=64):
    """Timesteps per window that fit the free memory of `device` with all views batched.

    image_hw: the original frames' (height, width) (their upload and letterbox count too).
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    frame_bytes = image_hw[0] * image_hw[1] * 3 * 5          # uint8 upload + float copy
    per_step = num_views * (BYTES_PER_IMAGE + frame_bytes)
    return int(max(1, min(max_timesteps, (free - FIXED_RESERVE) // per_step)))
