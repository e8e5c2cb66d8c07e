"""Simulated network output: a contract-3 views file made from a synthetic scene's ground truth.

Everything is expressed in a "network world frame", an unknown similarity of the true world, as
Pi3X gives it: the first camera's OpenCV frame at t = 0, with lengths multiplied by a wrong scene
scale `scale_factor` (net = s * R0^T (world - c0)). Cameras are predicted with small pose and focal
errors; each person inside an image, in front of the camera, not too far and not hidden behind a
nearer person gives one detection with noisy head position (in network units), noisy SO(3) joint
rotations, betas and expression, and pixel-noisy head and pelvis image points. The head position
is the true depth at the head pixel unprojected with the *predicted* intrinsics (as CHROMM forms
it), plus noise. Detections are dropped at `miss_rate`; `false_positive_rate` spurious
detections per true detection are added.

Ground truth for evaluation rides along in `views.extra` (the reader keeps unknown keys):
`gt_det_person` (D,) int32 person index or -1 for a false positive, `gt_world_from_net` (4, 4)
float64 similarity taking network-frame points to the true world, `gt_scale` () float64 the
network units per metre, `gt_det_occluded_dropped` () int32 how many were hidden by others.
"""

import dataclasses

import numpy as np

from ..body.skeleton import HEAD, PELVIS
from ..geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

BODY_JOINTS_FOR_BOX = np.arange(22)


@dataclasses.dataclass
class SimulationNoise:
    """Error model of the simulated network (lengths in true metres, angles in degrees)."""

    head_sigma_m: float = 0.05        # per-axis std of the head position in the camera frame
    rot_sigma_deg: float = 10.0       # rms angle of the SO(3) noise on every joint rotation
    miss_rate: float = 0.10           # probability that a visible person is not detected
    false_positive_rate: float = 0.0  # spurious detections per true detection
    betas_sigma: float = 0.1
    expression_sigma: float = 0.1
    pixel_sigma: float = 2.0          # image head / pelvis points
    scale_factor: float = 0.7         # network units per metre (Pi3X's scale error)
    cam_rot_sigma_deg: float = 0.5    # per-view constant camera rotation error (+ 1/4 per frame)
    cam_trans_sigma_m: float = 0.02   # per-view constant camera centre error (+ 1/4 per frame)
    focal_sigma_rel: float = 0.02     # relative focal length error per view
    point_sigma_m: float = 0.02       # scene point noise
    points_per_view: int = 3000       # scene points per view (0: none)
    max_distance_m: float = 15.0      # people farther from the camera are not detected
    occlusion_threshold: float = 0.6  # hidden when a nearer person's box covers this much of it
    gap_rate: float = 0.0             # per person and second: the person vanishes from all views
    gap_length_s: tuple = (0.3, 1.0)  # for this long (uniform), then comes back


PRESETS = {
    "clean": SimulationNoise(head_sigma_m=0.0, rot_sigma_deg=0.0, miss_rate=0.0, betas_sigma=0.0,
                             expression_sigma=0.0, pixel_sigma=0.0, cam_rot_sigma_deg=0.0,
                             cam_trans_sigma_m=0.0, focal_sigma_rel=0.0, point_sigma_m=0.0),
    "low": SimulationNoise(head_sigma_m=0.02, rot_sigma_deg=5.0, miss_rate=0.05),
    "realistic": SimulationNoise(),
    "high": SimulationNoise(head_sigma_m=0.10, rot_sigma_deg=20.0, miss_rate=0.20,
                            false_positive_rate=0.05, cam_rot_sigma_deg=1.0, cam_trans_sigma_m=0.05),
}


def so3_noise(rng, shape, sigma_rad):
    """(*shape, 3, 3) random rotations whose rms angle is `sigma_rad` (isotropic rotvec)."""
    if sigma_rad <= 0:
        return np.broadcast_to(np.eye(3), tuple(shape) + (3, 3)).copy()
    return axis_angle_to_matrix(rng.normal(scale=sigma_rad / np.sqrt(3.0), size=tuple(shape) + (3,)))


def project(K, points_cam):
    """Pinhole projection (OpenCV) of (..., 3) camera-frame points with (..., 3, 3) K."""
    uvw = np.einsum("...ij,...j->...i", K, points_cam)
    return uvw[..., :2] / uvw[..., 2:3]


def net_from_world_matrix(scene, scale):
    """(4, 4) similarity world -> network frame: camera 0's OpenCV frame at t=0, times `scale`."""
    c2w0 = scene.cam_c2w[0, 0]
    m = np.eye(4)
    m[:3, :3] = scale * c2w0[:3, :3].T
    m[:3, 3] = -scale * c2w0[:3, :3].T @ c2w0[:3, 3]
    return m


def simulate_views(scene, noise=None, seed=0, model=None):
    """A `Views` (contract 3) of what the network would output for `scene`, with ground truth
    in `extra` (see the module docstring). Deterministic for a given scene, noise and seed."""
    from ..io.views import Views, make_meta

    noise = SimulationNoise() if noise is None else noise
    if isinstance(noise, str):
        noise = PRESETS[noise]
    rng = np.random.default_rng(seed)
    r_cam, r_det, r_fp, r_pts = (np.random.default_rng(s) for s in rng.integers(0, 2**63, 4))
    s = float(noise.scale_factor)
    V, T, P = scene.num_views, scene.num_frames, scene.num_people
    net_from_world = net_from_world_matrix(scene, s)
    R0t = net_from_world[:3, :3] / s

    # Predicted cameras in the network frame.
    R_true = scene.cam_c2w[..., :3, :3]
    c_true = scene.cam_c2w[..., :3, 3]
    rot_sig = np.deg2rad(noise.cam_rot_sigma_deg)
    R_net = (R0t @ R_true) @ so3_noise(r_cam, (V, 1), rot_sig) @ so3_noise(r_cam, (V, T), rot_sig / 4)
    c_net = (np.einsum("ij,vtj->vti", net_from_world[:3, :3], c_true) + net_from_world[:3, 3]
             + s * r_cam.normal(scale=noise.cam_trans_sigma_m, size=(V, 1, 3))
             + s * r_cam.normal(scale=noise.cam_trans_sigma_m / 4, size=(V, T, 3)))
    cam_c2w = np.zeros((V, T, 4, 4))
    cam_c2w[..., :3, :3], cam_c2w[..., :3, 3], cam_c2w[..., 3, 3] = R_net, c_net, 1.0
    cam_K = scene.cam_K.copy()
    focal_err = 1.0 + r_cam.normal(scale=noise.focal_sigma_rel, size=V)
    cam_K[:, :, 0, 0] *= focal_err[:, None]
    cam_K[:, :, 1, 1] *= focal_err[:, None]

    # True detections: every visible (v, t, p).
    joints = scene.joints(model) if P else np.zeros((0, T, 55, 3))
    # (V, P, T, J, 3) joints in each true camera frame
    jc = np.einsum("vtji,vptkj->vptki", R_true, joints[None] - c_true[:, None, :, None, :])
    K_true = scene.cam_K[:, None, :, None]  # (V, 1, T, 1, 3, 3)
    depth = jc[..., 2]
    uv = project(K_true, np.where(depth[..., None] > 1e-3, jc, np.array([0, 0, 1.0])))
    w = scene.image_size[:, 0][:, None, None]
    h = scene.image_size[:, 1][:, None, None]
    inside = lambda j: ((uv[..., j, 0] >= 0) & (uv[..., j, 0] <= w - 1) &  # noqa: E731
                        (uv[..., j, 1] >= 0) & (uv[..., j, 1] <= h - 1) & (depth[..., j] > 0.3))
    dist = np.linalg.norm(jc[..., HEAD, :], axis=-1)
    visible = inside(HEAD) & inside(PELVIS) & (dist <= noise.max_distance_m)
    visible &= scene.valid[None]
    occluded = _occluded(uv[..., BODY_JOINTS_FOR_BOX, :], depth[..., PELVIS], visible,
                         noise.occlusion_threshold)
    detected = visible & ~occluded & (r_det.random(visible.shape) >= noise.miss_rate)
    detected &= ~_gaps(np.random.default_rng([seed, 1]), P, T, scene.fps, noise)[None]
    v_idx, p_idx, t_idx = np.nonzero(detected)
    n = len(v_idx)

    rot_sigma = np.deg2rad(noise.rot_sigma_deg)
    go_world = axis_angle_to_matrix(scene.global_orient[p_idx, t_idx])
    go_cam = np.swapaxes(R_true[v_idx, t_idx], -1, -2) @ go_world
    local = np.concatenate([scene.body_pose[p_idx, t_idx], scene.left_hand_pose[p_idx, t_idx],
                            scene.right_hand_pose[p_idx, t_idx], scene.jaw_pose[p_idx, t_idx][:, None]],
                           axis=1)
    mats = np.concatenate([go_cam[:, None], axis_angle_to_matrix(local)], axis=1)
    det_rotvec = matrix_to_axis_angle(mats @ so3_noise(r_det, (n, 53), rot_sigma))
    # As CHROMM predicts it: depth at the head pixel unprojected with the *predicted* intrinsics,
    # so a focal error shifts the head sideways in 3D but keeps it on its pixel.
    head_true = jc[v_idx, p_idx, t_idx, HEAD]
    K_pred = cam_K[v_idx, t_idx]
    head_uv = uv[v_idx, p_idx, t_idx, HEAD]
    ray = np.stack([(head_uv[:, 0] - K_pred[:, 0, 2]) / K_pred[:, 0, 0],
                    (head_uv[:, 1] - K_pred[:, 1, 2]) / K_pred[:, 1, 1], np.ones(n)], -1)
    det_head_cam = s * (ray * head_true[:, 2:3] + r_det.normal(scale=noise.head_sigma_m, size=(n, 3)))
    det_head_2d = uv[v_idx, p_idx, t_idx, HEAD] + r_det.normal(scale=noise.pixel_sigma, size=(n, 2))
    det_pelvis_2d = uv[v_idx, p_idx, t_idx, PELVIS] + r_det.normal(scale=noise.pixel_sigma, size=(n, 2))
    det_betas = scene.betas[p_idx] + r_det.normal(scale=noise.betas_sigma, size=(n, 10))
    det_expr = scene.expression[p_idx, t_idx] + r_det.normal(scale=noise.expression_sigma, size=(n, 10))
    det_score = r_det.uniform(0.5, 1.0, size=n)
    det_person = p_idx.astype(np.int64)

    fp = _false_positives(r_fp, scene, int(r_fp.poisson(noise.false_positive_rate * n)), s)
    order = np.lexsort((np.concatenate([det_person, fp["person"]]),
                        np.concatenate([v_idx, fp["view"]]), np.concatenate([t_idx, fp["time"]])))
    cat = lambda a, b: np.concatenate([a, b])[order]  # noqa: E731

    extra = {
        "gt_det_person": cat(det_person, fp["person"]).astype(np.int32),
        "gt_world_from_net": np.linalg.inv(net_from_world),
        "gt_scale": np.array(s),
        "gt_det_occluded_dropped": np.array(int((visible & occluded).sum()), dtype=np.int32),
    }
    points = _view_points(r_pts, scene, net_from_world, noise)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    meta = make_meta(scene.fps, scene.view_names, model="simulated", source="synthetic",
                     seed=int(seed), noise=dataclasses.asdict(noise))
    return Views(
        meta=meta, image_size=np.asarray(scene.image_size, dtype=np.int32), cam_K=f32(cam_K),
        cam_c2w=f32(cam_c2w), det_view=cat(v_idx, fp["view"]).astype(np.int32),
        det_time=cat(t_idx, fp["time"]).astype(np.int32),
        det_score=f32(cat(det_score, fp["score"])), det_head_2d=f32(cat(det_head_2d, fp["head_2d"])),
        det_pelvis_2d=f32(cat(det_pelvis_2d, fp["pelvis_2d"])),
        det_head_cam=f32(cat(det_head_cam, fp["head_cam"])),
        det_rotvec=f32(cat(det_rotvec, fp["rotvec"])), det_betas=f32(cat(det_betas, fp["betas"])),
        det_expression=f32(cat(det_expr, fp["expression"])),
        points=None if points is None else f32(points[0]),
        colors=None if points is None else points[1],
        point_view=None if points is None else points[2],
        point_time=None if points is None else points[3],
        extra=extra)


def _occluded(uv, depth, visible, threshold, head=HEAD):
    """(V, P, T) True where a nearer visible person's joint box covers this one's head and at
    least `threshold` of its box (a head detector still finds a person whose head shows)."""
    lo, hi = uv.min(axis=-2), uv.max(axis=-2)  # (V, P, T, 2)
    head_uv = uv[..., head, :]
    area = np.prod(hi - lo, axis=-1)
    out = np.zeros(visible.shape, dtype=bool)
    P = uv.shape[1]
    for p in range(P):
        for q in range(P):
            if p == q:
                continue
            inter = np.prod(np.clip(np.minimum(hi[:, p], hi[:, q]) - np.maximum(lo[:, p], lo[:, q]),
                                    0, None), axis=-1)
            cover = inter / np.maximum(area[:, p], 1e-9)
            head_in = np.all((head_uv[:, p] >= lo[:, q]) & (head_uv[:, p] <= hi[:, q]), axis=-1)
            out[:, p] |= visible[:, q] & (depth[:, q] < depth[:, p]) & (cover >= threshold) & head_in
    return out


def _gaps(rng, num_people, num_frames, fps, noise):
    """(P, T) True where a person is unseen by every view (short all-view gaps, for tracking)."""
    gap = np.zeros((num_people, num_frames), dtype=bool)
    if noise.gap_rate <= 0:
        return gap
    for p in range(num_people):
        for _ in range(rng.poisson(noise.gap_rate * num_frames / fps)):
            start = rng.integers(0, num_frames)
            gap[p, start:start + int(round(rng.uniform(*noise.gap_length_s) * fps))] = True
    return gap


def _false_positives(rng, scene, count, scale):
    """Spurious detections at random pixels, depths, poses and shapes; person -1."""
    v = rng.integers(0, scene.num_views, size=count)
    t = rng.integers(0, scene.num_frames, size=count)
    size = scene.image_size[v].astype(np.float64)
    pix = rng.uniform(0.05, 0.95, size=(count, 2)) * size
    K = scene.cam_K[v, t]
    depth = rng.uniform(2.0, 10.0, size=count)
    ray = np.stack([(pix[:, 0] - K[:, 0, 2]) / K[:, 0, 0], (pix[:, 1] - K[:, 1, 2]) / K[:, 1, 1],
                    np.ones(count)], -1)
    rotvec = rng.normal(scale=0.3, size=(count, 53, 3))
    rotvec[:, 0] = matrix_to_axis_angle(axis_angle_to_matrix(rng.normal(scale=np.pi, size=(count, 3))))
    return {"view": v, "time": t, "person": np.full(count, -1), "score": rng.uniform(0.3, 0.8, count),
            "head_2d": pix, "pelvis_2d": pix + np.stack([np.zeros(count), K[:, 1, 1] * 0.55 / depth], -1),
            "head_cam": scale * ray * depth[:, None], "rotvec": rotvec,
            "betas": rng.normal(size=(count, 10)), "expression": rng.normal(scale=0.5, size=(count, 10))}


def _view_points(rng, scene, net_from_world, noise):
    """Scene points each view sees at t = 0, in the network frame with noise; or None."""
    if noise.points_per_view <= 0 or len(scene.points) == 0:
        return None
    pts, cols, views = [], [], []
    for v in range(scene.num_views):
        c2w = scene.cam_c2w[v, 0]
        pc = (scene.points - c2w[:3, 3]) @ c2w[:3, :3]
        ok = pc[:, 2] > 0.1
        uv = project(scene.cam_K[v, 0], np.where(ok[:, None], pc, [0, 0, 1.0]))
        w, h = scene.image_size[v]
        ok &= (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
        idx = np.nonzero(ok)[0]
        if len(idx) > noise.points_per_view:
            idx = np.sort(rng.choice(idx, noise.points_per_view, replace=False))
        world = scene.points[idx] + rng.normal(scale=noise.point_sigma_m, size=(len(idx), 3))
        pts.append(world @ net_from_world[:3, :3].T + net_from_world[:3, 3])
        cols.append(scene.colors[idx])
        views.append(np.full(len(idx), v, dtype=np.int32))
    view = np.concatenate(views)
    return (np.concatenate(pts), np.concatenate(cols).astype(np.uint8), view,
            np.zeros(len(view), dtype=np.int32))


def desync_views(views, factor, shifts, num_frames):
    """Views simulated at `factor` times the frame rate -> views at the base rate whose view v
    starts `shifts[v]` base frames late (a multiple of 1/factor): view v's frame k is the fine
    frame (k + shifts[v]) * factor. As cameras started at different times: in sync, view v's
    frame t + shifts[r] - shifts[v] shows the same instant as view r's frame t."""
    import dataclasses as dc

    starts = [int(round(s * factor)) for s in shifts]
    det_view, det_time = np.asarray(views.det_view), np.asarray(views.det_time)
    keep = np.zeros(len(det_view), bool)
    new_time = np.zeros(len(det_view), np.int64)
    for v, start in enumerate(starts):
        rel = det_time - start
        sel = (det_view == v) & (rel >= 0) & (rel % factor == 0) & (rel // factor < num_frames)
        keep |= sel
        new_time[sel] = rel[sel] // factor
    frames = np.stack([start + np.arange(num_frames) * factor for start in starts])
    if frames.max() >= views.num_frames:
        raise ValueError("the fine views are too short for these shifts")
    order = np.lexsort((det_view[keep], new_time[keep]))
    idx = np.flatnonzero(keep)[order]
    per_det = {k: np.asarray(getattr(views, k))[idx] for k in
               ("det_view", "det_score", "det_head_2d", "det_pelvis_2d", "det_head_cam", "det_rotvec",
                "det_betas", "det_expression")}
    extra = {k: (np.asarray(v)[idx] if np.ndim(v) and np.shape(v)[0] == len(det_view) else v)
             for k, v in views.extra.items()}
    v_idx = np.arange(views.num_views)[:, None]
    meta = dict(views.meta, fps=views.fps / factor)
    point_time = None
    if views.point_time is not None:
        point_time = np.clip(np.asarray(views.point_time) // factor, 0, num_frames - 1).astype(np.int32)
    return dc.replace(views, meta=meta, cam_K=views.cam_K[v_idx, frames], cam_c2w=views.cam_c2w[v_idx, frames],
                      det_time=new_time[idx].astype(np.int32), point_time=point_time, extra=extra, **per_det)
