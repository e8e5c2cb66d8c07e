"""Synthetic multi-view multi-person scenes with exact ground truth (numpy only, seeded).

People walk on the floor of the project's world (Z up, metres, floor z = 0) along ellipses near
the centre; every second person walks a slightly larger copy of the previous one's ellipse the
other way round, so pairs pass each other about `pass_gap` metres apart twice per loop, and the
pairs' ellipses cross each other. Poses are a kinematic walk (hip, knee, ankle, arm swing, a
little pelvis and spine twist) whose phase follows the distance walked, so the stance foot nearly
stops on the floor. Each frame the body is lifted so its lowest foot joint sits at the height the
foot joints have above the soles (from the model file, or a constant without one).

Cameras stand on a ring around the action at 1-2 m height and look at its centre; focal lengths,
principal points and image orientation (landscape or portrait) vary per view, and cameras may
drift slowly along the ring. The scene holds floor, wall and box points with colours.

`scene.to_take()` gives the ground truth as a contract-1 Take; `scene.joints()` the (P, T, 55, 3)
world joints.
"""

import dataclasses

import numpy as np

from ..body.lbs import full_pose_matrices, posed_joints
from ..body.skeleton import approximate_rest_joints
from ..geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

NUM_BETAS = 10
NUM_EXPRESSION = 10
FOOT_JOINTS = (7, 8, 10, 11)  # left/right ankle, left/right foot
# Height of the lowest foot joint above the sole when no model file gives it (metres).
DEFAULT_FOOT_CLEARANCE = 0.05
FOOT_SOFTNESS = 0.01  # metres (soft minimum over the foot joints)
HEIGHT_SMOOTHING_S = 0.06  # seconds (Gaussian sigma on the body height: no kink at foot switches)
LANDSCAPE, PORTRAIT = (1280, 720), (720, 1280)


@dataclasses.dataclass
class SyntheticScene:
    """Ground truth of a synthetic take: contract-1 arrays plus the rest skeletons used."""

    fps: float
    frame_times: np.ndarray      # (T,)
    image_size: np.ndarray       # (V, 2) width, height
    cam_K: np.ndarray            # (V, T, 3, 3)
    cam_c2w: np.ndarray          # (V, T, 4, 4), OpenCV axes
    points: np.ndarray           # (N, 3)
    colors: np.ndarray           # (N, 3) uint8
    person_ids: np.ndarray       # (P,)
    betas: np.ndarray            # (P, 10)
    expression: np.ndarray       # (P, T, 10)
    global_orient: np.ndarray    # (P, T, 3)
    body_pose: np.ndarray        # (P, T, 21, 3)
    jaw_pose: np.ndarray         # (P, T, 3)
    left_hand_pose: np.ndarray   # (P, T, 15, 3)
    right_hand_pose: np.ndarray  # (P, T, 15, 3)
    transl: np.ndarray           # (P, T, 3)
    valid: np.ndarray            # (P, T) bool
    rest_joints: np.ndarray      # (P, 55, 3) rest skeleton per person (model's or approximate)
    seed: int = 0
    model: object = None         # the SmplxModel the scene was made with, or None

    def at_frames(self, frames, fps=None):
        """The scene at the given frame indices (e.g. every 4th frame: a quarter of the rate)."""
        frames = np.asarray(np.round(frames), dtype=np.int64)
        per_frame = ("cam_K", "cam_c2w", "expression", "global_orient", "body_pose", "jaw_pose",
                     "left_hand_pose", "right_hand_pose", "transl", "valid")
        sliced = {k: getattr(self, k)[:, frames] for k in per_frame}
        return dataclasses.replace(self, fps=fps or self.fps, frame_times=self.frame_times[frames] - self.frame_times[frames[0]],
                                   **sliced)

    @property
    def num_people(self):
        return self.person_ids.shape[0]

    @property
    def num_views(self):
        return self.cam_K.shape[0]

    @property
    def num_frames(self):
        return self.frame_times.shape[0]

    @property
    def view_names(self):
        return [f"view_{v:02d}" for v in range(self.num_views)]

    def rotations(self):
        """(P, T, 55, 3, 3) local joint rotations (flat hand mean)."""
        return full_pose_matrices(self.global_orient, self.body_pose, self.jaw_pose,
                                  self.left_hand_pose, self.right_hand_pose)

    def joints(self, model=None):
        """(P, T, 55, 3) world joints, as the smplx forward pass gives them.

        With a model (`model`, else the one the scene was made with) the rest joints come from
        its regressor on the template with shape and expression, as smplx does; without one,
        from `rest_joints`.
        """
        model = model if model is not None else self.model
        rot = self.rotations()
        out = np.empty(rot.shape[:3] + (3,))
        for p in range(self.num_people):
            rest = (model_rest_joints(model, self.betas[p], self.expression[p])
                    if model is not None else self.rest_joints[p])
            out[p] = posed_joints(rest, self.betas[p], rot[p], self.transl[p])
        return out

    def to_take(self):
        """The ground truth as a contract-1 Take (float32 arrays, flat_hand_mean=True)."""
        from ..io.take import Take, make_meta

        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        meta = make_meta(self.fps, self.view_names, NUM_BETAS, NUM_EXPRESSION, flat_hand_mean=True,
                         source="synthetic", seed=int(self.seed))
        return Take(meta=meta, frame_times=np.asarray(self.frame_times, dtype=np.float64),
                    image_size=np.asarray(self.image_size, dtype=np.int32),
                    cam_K=f32(self.cam_K), cam_c2w=f32(self.cam_c2w), points=f32(self.points),
                    colors=np.asarray(self.colors, dtype=np.uint8),
                    person_ids=np.asarray(self.person_ids, dtype=np.int32), betas=f32(self.betas),
                    expression=f32(self.expression), global_orient=f32(self.global_orient),
                    jaw_pose=f32(self.jaw_pose), body_pose=f32(self.body_pose),
                    left_hand_pose=f32(self.left_hand_pose),
                    right_hand_pose=f32(self.right_hand_pose), transl=f32(self.transl),
                    valid=np.asarray(self.valid, dtype=bool))


def make_scene(num_people=4, num_views=4, num_frames=300, fps=30.0, seed=0, same_shape=False,
               image_size=None, camera_motion=0.0, camera_radius=(6.0, 7.5), walk_speed=(1.0, 1.4),
               pass_gap=0.5, min_separation=0.4, model=None, point_spacing=0.12):
    """A deterministic synthetic scene (same arguments and seed, same arrays).

    image_size: (width, height) for every view, or a list of one per view; None gives 1280x720
    with every third view (2, 5, ...) portrait 720x1280.
    min_separation: people crossing are nudged apart to keep their pelvises this far apart.
    camera_motion: amplitude in metres of a slow drift of each camera along the ring (0: static).
    model: an SmplxModel for the rest skeletons (betas-dependent) and foot clearance; None uses
    `approximate_rest_joints`, so nothing needs a model file.
    """
    if num_people < 0 or num_views < 1 or num_frames < 1 or fps <= 0:
        raise ValueError("make_scene needs num_people >= 0, num_views >= 1, num_frames >= 1, fps > 0")
    rng = np.random.default_rng(seed)
    times = np.arange(num_frames) / float(fps)

    # One stream per part so that changing one knob leaves the others' draws alone.
    r_people, r_cams, r_points = (np.random.default_rng(s) for s in rng.integers(0, 2**63, 3))

    P, T = num_people, num_frames
    if same_shape:
        betas = np.repeat(np.clip(r_people.normal(size=(1, NUM_BETAS)), -2, 2), P, axis=0)
    else:
        betas = np.clip(r_people.normal(size=(P, NUM_BETAS)), -2, 2)
    rest = np.stack([model.rest_joints(b) if model is not None else approximate_rest_joints()
                     for b in betas]) if P else np.zeros((0, 55, 3))
    clearance = np.array([_foot_clearance(model, b) for b in betas])

    paths = _walk_paths(r_people, P, times, walk_speed, pass_gap, min_separation)
    poses = [_walk_pose(r_people, path, times) for path in paths]
    go = np.stack([p[0] for p in poses]) if P else np.zeros((0, T, 3))
    body = np.stack([p[1] for p in poses]) if P else np.zeros((0, T, 21, 3))
    jaw = np.stack([p[2] for p in poses]) if P else np.zeros((0, T, 3))
    lh = np.stack([p[3] for p in poses]) if P else np.zeros((0, T, 15, 3))
    rh = np.stack([p[4] for p in poses]) if P else np.zeros((0, T, 15, 3))
    expr = np.stack([_smooth_noise(r_people, times, (NUM_EXPRESSION,), 0.3, 0.2)
                     for _ in range(P)]) if P else np.zeros((0, T, NUM_EXPRESSION))

    # transl: pelvis over the path, lowest foot joint at the clearance height.
    transl = np.zeros((P, T, 3))
    for p in range(P):
        rot = full_pose_matrices(go[p], body[p], jaw[p], lh[p], rh[p])
        rest_p = model_rest_joints(model, betas[p], expr[p]) if model is not None else rest[p]
        j0 = posed_joints(rest_p, betas[p], rot, np.zeros((T, 3)))
        transl[p, :, :2] = paths[p]["xy"] - rest_p[..., 0, :2]
        height = clearance[p] - _soft_min(j0[:, FOOT_JOINTS, 2], FOOT_SOFTNESS)
        transl[p, :, 2] = _gaussian_smooth(height, HEIGHT_SMOOTHING_S * fps)

    sizes = _image_sizes(image_size, num_views)
    cam_K, cam_c2w = _cameras(r_cams, num_views, times, sizes, camera_radius, camera_motion)
    points, colors = _scene_points(r_points, point_spacing)

    return SyntheticScene(
        fps=float(fps), frame_times=times, image_size=sizes, cam_K=cam_K, cam_c2w=cam_c2w,
        points=points, colors=colors, person_ids=np.arange(P, dtype=np.int32), betas=betas,
        expression=expr, global_orient=go, body_pose=body, jaw_pose=jaw, left_hand_pose=lh,
        right_hand_pose=rh, transl=transl, valid=np.ones((P, T), dtype=bool), rest_joints=rest,
        seed=int(seed), model=model)


# --- people -------------------------------------------------------------------------------------

def _soft_min(x, softness):
    """Smooth lower bound of min over the last axis (log-sum-exp), within softness*log(n) of it:
    a hard min would give the body's height a kink at every change of supporting foot joint."""
    m = x.min(axis=-1, keepdims=True)
    return (m - softness * np.log(np.sum(np.exp(-(x - m) / softness), axis=-1, keepdims=True)))[..., 0]


def _gaussian_smooth(x, sigma):
    """Gaussian filter along axis 0 with edge padding (numpy only)."""
    if sigma <= 0 or len(x) < 2:
        return x
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(x[:1], r), x, np.repeat(x[-1:], r)])
    return np.convolve(padded, k, mode="valid")


def model_rest_joints(model, betas, expression):
    """(T, 55, 3) rest joints per frame: regressor on the template with shape and expression."""
    k = min(expression.shape[-1], model.exprdirs.shape[2])
    return model.rest_joints(np.broadcast_to(betas, (len(expression),) + np.shape(betas)),
                             expression[:, :k])


def _foot_clearance(model, betas):
    """Height of the lowest foot joint above the lowest vertex of the rest body."""
    if model is None:
        return DEFAULT_FOOT_CLEARANCE
    verts = model.shaped_vertices(betas)
    joints = model.J_regressor @ verts
    up = 1  # SMPL-X rest frame: +Y up
    return float(joints[list(FOOT_JOINTS), up].min() - verts[:, up].min())


def _walk_paths(rng, num_people, times, walk_speed, pass_gap, min_separation):
    """Per person: xy (T, 2) positions, heading (T,) radians, distance walked (T,)."""
    paths = []
    for p in range(num_people):
        if p % 2 == 0:
            centre = rng.uniform(-0.6, 0.6, size=2)
            a, b = rng.uniform(1.2, 2.2), rng.uniform(0.6, 1.2)
            tilt = rng.uniform(0, np.pi)
            direction = 1.0
            u0 = rng.uniform(0, 2 * np.pi)
        else:  # partner: a slightly larger copy walked the other way, starting elsewhere
            a, b, direction = a + pass_gap, b + pass_gap, -1.0
            u0 = u0 + rng.uniform(0.6 * np.pi, 1.4 * np.pi)
        speed = rng.uniform(*walk_speed)
        omega = speed / (0.5 * (a + b))
        u = u0 + direction * omega * times
        local = np.stack([a * np.cos(u), b * np.sin(u)], -1)
        dlocal = direction * np.stack([-a * np.sin(u), b * np.cos(u)], -1)
        c, s = np.cos(tilt), np.sin(tilt)
        rot = np.array([[c, -s], [s, c]])
        paths.append({"xy": centre + local @ rot.T, "vel": dlocal @ rot.T * omega})
    _keep_apart(paths, times, min_separation)
    for path in paths:
        vel = path.pop("vel")
        path["heading"] = np.arctan2(vel[:, 1], vel[:, 0])
        step = np.linalg.norm(vel, axis=1)
        path["distance"] = np.concatenate([[0.0], np.cumsum(0.5 * (step[1:] + step[:-1]) * np.diff(times))])
    return paths


def _keep_apart(paths, times, min_separation, iterations=30):
    """Nudge crossing people apart so that pelvises stay about `min_separation` apart (bodies
    do not walk through each other); the nudges are smoothed over time (sigma 0.25 s)."""
    if len(paths) < 2 or len(times) < 2 or min_separation <= 0:
        return
    xy0 = np.stack([p["xy"] for p in paths])
    xy = xy0.copy()
    sigma = 0.25 / max(times[1] - times[0], 1e-9)
    for _ in range(iterations):
        diff = xy[:, None] - xy[None]                      # (P, P, T, 2)
        dist = np.linalg.norm(diff, axis=-1, keepdims=True)
        push = 0.5 * np.clip(1.05 * min_separation - dist, 0, None) * diff / np.maximum(dist, 1e-9)
        correction = xy + push.sum(axis=1) - xy0
        correction = np.stack([[_gaussian_smooth(c[:, k], sigma) for k in range(2)] for c in correction])
        xy = xy0 + np.swapaxes(correction, 1, 2)
    for p, path in enumerate(paths):
        path["vel"] = path["vel"] + np.gradient(xy[p] - xy0[p], times, axis=0)
        path["xy"] = xy[p]


def _rx(a):
    return np.stack([a, np.zeros_like(a), np.zeros_like(a)], -1)


def _ry(a):
    return np.stack([np.zeros_like(a), a, np.zeros_like(a)], -1)


def _rz(a):
    return np.stack([np.zeros_like(a), np.zeros_like(a), a], -1)


def _compose(*rotvecs):
    """Axis-angle of the product of rotations given as axis-angle arrays (left to right)."""
    m = axis_angle_to_matrix(rotvecs[0])
    for r in rotvecs[1:]:
        m = m @ axis_angle_to_matrix(r)
    return matrix_to_axis_angle(m)


def _smooth_noise(rng, times, shape, amplitude, max_freq):
    """Sum of two random sinusoids per element: smooth, bounded by `amplitude`."""
    out = np.zeros((len(times),) + shape)
    for _ in range(2):
        freq = rng.uniform(0.05, max_freq, size=shape)
        phase = rng.uniform(0, 2 * np.pi, size=shape)
        amp = rng.uniform(0.2, 0.5, size=shape) * amplitude
        out += amp * np.sin(2 * np.pi * freq * times.reshape((-1,) + (1,) * len(shape)) + phase)
    return out


def _walk_pose(rng, path, times):
    """Axis-angle global_orient (T,3), body (T,21,3), jaw (T,3), hands (T,15,3) x2 for a walk.

    SMPL-X's rest frame has +Y up, +Z forward and the body's left on +X; the world is Z up, so
    global_orient = Rz(heading + 90 deg) Rx(90 deg), then a small pelvis twist about body +Y.
    """
    T = len(times)
    hip_amp = rng.uniform(0.30, 0.40)
    # Hips follow a rounded triangle wave of the distance walked: while a leg is on the floor its
    # angle falls at the rate that carries the foot back as fast as the body moves forward
    # (leg length x angle rate = speed), so the stance foot stays put.
    leg, k = 0.80, 0.9
    stride = 4 * leg * hip_amp
    phi = 2 * np.pi * path["distance"] / stride + rng.uniform(0, 2 * np.pi)
    s = np.arcsin(k * np.sin(phi)) / np.arcsin(k)
    c = np.cos(phi)
    zero = np.zeros(T)

    go = _compose(_rz(path["heading"] + np.pi / 2), _rx(np.full(T, np.pi / 2)), _ry(0.08 * s))
    body = np.zeros((T, 21, 3))
    hip_l, hip_r = hip_amp * s, -hip_amp * s            # forward flexion, radians
    knee_l = 0.1 + 0.6 * ((1 + c) / 2) ** 3             # knees bend while the leg swings forward
    knee_r = 0.1 + 0.6 * ((1 - c) / 2) ** 3
    body[:, 0] = _rx(-hip_l)
    body[:, 1] = _rx(-hip_r)
    body[:, 3] = _rx(knee_l)
    body[:, 4] = _rx(knee_r)
    body[:, 6] = _rx(0.5 * (hip_l - knee_l))            # ankles keep the feet roughly flat
    body[:, 7] = _rx(0.5 * (hip_r - knee_r))
    for j in (2, 5, 8):                                 # spine1..3 counter-twist
        body[:, j] = _ry(-0.03 * s)
    body[:, 14] = _rx(0.05 * np.sin(2 * phi))           # head nod
    arm_amp = rng.uniform(0.25, 0.4)
    swing_l, swing_r = -arm_amp * s, arm_amp * s        # arms swing against the legs
    body[:, 15] = _compose(_rx(-swing_l), _rz(np.full(T, -1.25)))  # left arm down from T-pose
    body[:, 16] = _compose(_rx(-swing_r), _rz(np.full(T, 1.25)))
    body[:, 17] = _ry(-(0.3 + 0.075 * (1 + s)))       # elbows bend forward, more when the arm does
    body[:, 18] = _ry(0.3 + 0.075 * (1 - s))
    body += _smooth_noise(rng, times, (21, 3), 0.03, 0.5)  # a little life in every joint

    jaw = _rx(0.05 + zero) + _smooth_noise(rng, times, (3,), 0.03, 0.3)
    curl = np.zeros((15, 3))
    curl[:, 2] = 0.2
    left = curl + _smooth_noise(rng, times, (15, 3), 0.08, 0.5)
    right = -curl + _smooth_noise(rng, times, (15, 3), 0.08, 0.5)
    return go, body, jaw, left, right


# --- cameras and scene --------------------------------------------------------------------------

def _image_sizes(image_size, num_views):
    if image_size is None:
        sizes = [PORTRAIT if v % 3 == 2 else LANDSCAPE for v in range(num_views)]
    elif np.ndim(image_size) == 1:
        sizes = [tuple(image_size)] * num_views
    else:
        sizes = [tuple(s) for s in image_size]
        if len(sizes) != num_views:
            raise ValueError(f"image_size lists {len(sizes)} sizes for {num_views} views")
    return np.asarray(sizes, dtype=np.int32)


def look_at_c2w(position, target, up=(0.0, 0.0, 1.0)):
    """(..., 4, 4) OpenCV camera-to-world (x right, y down, z forward) looking at `target`."""
    position = np.asarray(position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - position
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, np.broadcast_to(up, forward.shape))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    c2w = np.zeros(position.shape[:-1] + (4, 4))
    c2w[..., :3, 0], c2w[..., :3, 1], c2w[..., :3, 2] = right, down, forward
    c2w[..., :3, 3] = position
    c2w[..., 3, 3] = 1.0
    return c2w


def _cameras(rng, num_views, times, sizes, radius_range, motion):
    V, T = num_views, len(times)
    K = np.zeros((V, T, 3, 3))
    c2w = np.zeros((V, T, 4, 4))
    azimuth0 = rng.uniform(0, 2 * np.pi)
    for v in range(V):
        w, h = sizes[v]
        fov_long = np.deg2rad(rng.uniform(55, 75))
        f = 0.5 * max(w, h) / np.tan(0.5 * fov_long)
        cx = (w - 1) / 2 + rng.normal(scale=0.01 * w)
        cy = (h - 1) / 2 + rng.normal(scale=0.01 * h)
        K[v] = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]])
        az = azimuth0 + 2 * np.pi * v / V + rng.uniform(-0.25, 0.25) * np.pi / V
        radius = rng.uniform(*radius_range)
        height = rng.uniform(1.0, 2.0)
        period = rng.uniform(8.0, 16.0)
        drift = motion * np.sin(2 * np.pi * times / period + rng.uniform(0, 2 * np.pi))
        az_t = az + drift / radius
        pos = np.stack([radius * np.cos(az_t), radius * np.sin(az_t),
                        height + 0.1 * drift], -1)
        target = np.array([0.0, 0.0, 1.0]) + np.append(rng.normal(scale=0.3, size=2), 0.0)
        c2w[v] = look_at_c2w(pos, np.broadcast_to(target, pos.shape))
    return K, c2w


def _scene_points(rng, spacing):
    """Floor (checker tiles), four walls and three boxes: (N, 3) float points, (N, 3) uint8."""
    pts, cols = [], []
    g = np.arange(-8.0, 8.0 + 1e-9, spacing)
    x, y = np.meshgrid(g, g, indexing="ij")
    floor = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], -1)
    tile = (np.floor(floor[:, 0]) + np.floor(floor[:, 1])) % 2
    pts.append(floor)
    cols.append(np.where(tile[:, None] > 0, [170, 160, 150], [90, 85, 80]))
    wall_colors = ([200, 180, 150], [150, 180, 200], [180, 200, 150], [200, 150, 170])
    zs = np.arange(0.0, 3.0 + 1e-9, spacing)
    for k, color in enumerate(wall_colors):
        u, z = np.meshgrid(g, zs, indexing="ij")
        u, z = u.ravel(), z.ravel()
        side = 8.0 if k % 2 == 0 else -8.0
        across = np.full_like(u, side)
        wall = np.stack([across, u, z], -1) if k < 2 else np.stack([u, across, z], -1)
        pts.append(wall)
        cols.append(np.broadcast_to(color, wall.shape))
    for k in range(3):
        az = rng.uniform(0, 2 * np.pi)
        centre = 4.5 * np.array([np.cos(az), np.sin(az)])
        size = rng.uniform(0.4, 1.0, size=3)
        pts.append(_box_points(rng, centre, size, spacing))
        cols.append(np.broadcast_to(rng.integers(40, 230, size=3), pts[-1].shape))
    points = np.concatenate(pts)
    colors = np.concatenate(cols).astype(np.float64) + rng.normal(scale=6.0, size=points.shape)
    return points, np.clip(colors, 0, 255).astype(np.uint8)


def _box_points(rng, centre, size, spacing):
    """Points on the four sides and top of a box standing on the floor."""
    n = max(4, int(np.ceil(4 * size.max() * size.max() / spacing**2)))
    u = rng.uniform(-0.5, 0.5, size=(n, 3)) * size
    face = rng.integers(0, 5, size=n)
    axis = np.where(face < 2, 0, np.where(face < 4, 1, 2))
    sign = np.where(face % 2 == 0, 0.5, -0.5)
    sign = np.where(face == 4, 0.5, sign)
    u[np.arange(n), axis] = sign * size[axis]
    return u + np.array([centre[0], centre[1], 0.5 * size[2]])
