"""Synthetic multi-view multi-person scenes with exact ground truth (numpy only, seeded).

People walk on the floor of the project's world (Z up, metres, floor z = 0) along ellipses near
the centre; every second person walks a slightly larger copy of the previous one's ellipse the
other way round, so pairs pass each other about `pass_gap` metres apart twice per loop, and the
pairs' ellipses cross each other. People walk in stretches of 3-7 s that start and end at rest
and stand for 0.8-2 s in between, both feet down; they turn as the ellipse curves. The walk is
built from footsteps: each foot bears weight for 60 % of its gait cycle, planted flat on the
floor (sole at z = 0) where the pelvis passes over it, and swings to its next footstep in
between; the legs are solved onto the footsteps by analytic IK (`body.ik`), so a planted foot
does not move at all, and the pelvis is as high as the legs allow (a smooth lower envelope). The
upper body swings its arms, twists its spine and nods. `scene.foot_contact` holds the
ground-truth contact labels (P, T, 2): left, right foot bearing weight.

Cameras stand on a ring around the action at 1-2 m height and look at its centre; focal lengths,
principal points and image orientation (landscape or portrait) vary per view, and cameras may
drift slowly along the ring. The scene holds floor, wall and box points with colours.

`scene.to_take()` gives the ground truth as a contract-1 Take; `scene.joints()` the (P, T, 55, 3)
world joints.
"""

import dataclasses

import numpy as np

from ..body.ik import LEGS, flat_foot_rotation, leg_reach, solve_leg
from ..body.lbs import full_pose_matrices, posed_joints
from ..body.skeleton import approximate_rest_joints
from ..fusion.smoothing import lower_envelope
from ..geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

NUM_BETAS = 10
NUM_EXPRESSION = 10
FOOT_JOINTS = (7, 8, 10, 11)  # left/right ankle, left/right foot
# Height of the lowest foot joint above the sole when no model file gives it (metres).
DEFAULT_FOOT_CLEARANCE = 0.05
STANCE = 0.6  # share of its gait cycle a foot bears weight (two double supports of 0.1)
STEP_HEIGHT = 0.08  # metres the swinging ankle is lifted at most
LEG_BODY_JOINTS = (0, 1, 3, 4, 6, 7, 9, 10)  # body_pose indices of hips, knees, ankles, feet
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
    foot_contact: np.ndarray = None  # (P, T, 2) bool: left / right foot bears weight (planted)
    seed: int = 0
    model: object = None         # the SmplxModel the scene was made with, or None

    def at_frames(self, frames, fps=None):
        """The scene at the given frame indices (e.g. every 4th frame: a quarter of the rate)."""
        frames = np.asarray(np.round(frames), dtype=np.int64)
        per_frame = ("cam_K", "cam_c2w", "expression", "global_orient", "body_pose", "jaw_pose",
                     "left_hand_pose", "right_hand_pose", "transl", "valid", "foot_contact")
        sliced = {k: getattr(self, k)[:, frames] for k in per_frame if getattr(self, k) is not None}
        times = self.frame_times[frames] - self.frame_times[frames[0]]
        return dataclasses.replace(self, fps=fps or self.fps, frame_times=times, **sliced)

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
                    valid=np.asarray(self.valid, dtype=bool),
                    foot_contact=None if self.foot_contact is None else np.asarray(self.foot_contact, bool))


def make_scene(num_people=4, num_views=4, num_frames=300, fps=30.0, seed=0, same_shape=False,
               image_size=None, camera_motion=0.0, camera_radius=(6.0, 7.5), walk_speed=(1.0, 1.4),
               pass_gap=0.5, min_separation=0.4, model=None, point_spacing=0.12, pauses=True):
    """A deterministic synthetic scene (same arguments and seed, same arrays).

    image_size: (width, height) for every view, or a list of one per view; None gives 1280x720
    with every third view (2, 5, ...) portrait 720x1280.
    min_separation: people crossing are nudged apart to keep their pelvises this far apart.
    camera_motion: amplitude in metres of a slow drift of each camera along the ring (0: static).
    model: an SmplxModel for the rest skeletons (betas-dependent) and foot clearance; None uses
    `approximate_rest_joints`, so nothing needs a model file.
    pauses: walking stretches of 3-7 s with standing pauses between them (False: walk throughout).
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

    paths = _walk_paths(r_people, P, times, walk_speed, pass_gap, min_separation, pauses)
    poses = [_walk_pose(r_people, path, times) for path in paths]
    go = np.stack([p[0] for p in poses]) if P else np.zeros((0, T, 3))
    body = np.stack([p[1] for p in poses]) if P else np.zeros((0, T, 21, 3))
    jaw = np.stack([p[2] for p in poses]) if P else np.zeros((0, T, 3))
    lh = np.stack([p[3] for p in poses]) if P else np.zeros((0, T, 15, 3))
    rh = np.stack([p[4] for p in poses]) if P else np.zeros((0, T, 15, 3))
    expr = np.stack([_smooth_noise(r_people, times, (NUM_EXPRESSION,), 0.3, 0.2)
                     for _ in range(P)]) if P else np.zeros((0, T, NUM_EXPRESSION))

    # Legs solved onto the footsteps, the pelvis as high as they allow.
    transl = np.zeros((P, T, 3))
    contact = np.zeros((P, T, 2), dtype=bool)
    for p in range(P):
        rest_p = model_rest_joints(model, betas[p], expr[p]) if model is not None else rest[p]
        rest0 = rest_p[0] if rest_p.ndim == 3 else rest_p
        ankle_height = clearance[p] + rest0[LEGS[0][2], 1] - rest0[list(FOOT_JOINTS), 1].min()
        transl[p], body[p], contact[p] = _plant_legs(go[p], body[p], jaw[p], lh[p], rh[p], rest_p,
                                                     paths[p], times, ankle_height, fps)

    sizes = _image_sizes(image_size, num_views)
    cam_K, cam_c2w = _cameras(r_cams, num_views, times, sizes, camera_radius, camera_motion)
    points, colors = _scene_points(r_points, point_spacing)

    return SyntheticScene(
        fps=float(fps), frame_times=times, image_size=sizes, cam_K=cam_K, cam_c2w=cam_c2w,
        points=points, colors=colors, person_ids=np.arange(P, dtype=np.int32), betas=betas,
        expression=expr, global_orient=go, body_pose=body, jaw_pose=jaw, left_hand_pose=lh,
        right_hand_pose=rh, transl=transl, valid=np.ones((P, T), dtype=bool), rest_joints=rest,
        foot_contact=contact, seed=int(seed), model=model)


# --- people -------------------------------------------------------------------------------------

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


def _eased_walk(duration, ramp, times):
    """Cycles walked after `times` seconds of a stretch of `duration` s at one cycle per second
    whose speed ramps up and down as sin^2 over `ramp` s (zero velocity and acceleration at rest)."""
    tau = np.clip(times, 0.0, duration)
    ramp = min(ramp, duration / 2)

    def up(x):
        x = np.clip(x, 0.0, ramp)
        return x / 2 - ramp / (2 * np.pi) * np.sin(np.pi * x / ramp)

    total = duration - ramp
    middle = np.clip(tau - ramp, 0.0, duration - 2 * ramp)
    return np.where(tau <= duration - ramp, up(tau) + middle, total - up(duration - tau))


def _gait_phase(rng, times, cadence, pauses):
    """(T,) gait phase in cycles. Walking stretches of 3-7 s at `cadence` cycles per second, each
    starting and ending at rest, with standing pauses of 0.8-2 s between them; every stretch ends
    at a double-support phase (k / 2 + 0.05), so both feet are down while the person stands.
    Without `pauses`, one endless stretch at full speed."""
    if not pauses:
        return rng.uniform(0, 1) + cadence * times
    ramp = 0.5
    phase = np.full(len(times), 0.5 * rng.integers(0, 2) + 0.05)
    t0 = rng.uniform(0.0, 1.5)  # standing at the start for a moment
    a = phase[0]
    end = times[-1] if len(times) else 0.0
    while t0 <= end:
        cycles = rng.uniform(3.0, 7.0) * cadence
        b = np.ceil(2 * (a + cycles - 0.05)) / 2 + 0.05
        duration = (b - a) / cadence + ramp
        after = times >= t0
        phase[after] = a + cadence * _eased_walk(duration, ramp, times[after] - t0)
        a, t0 = b, t0 + duration + rng.uniform(0.8, 2.0)
    return phase


def _walk_paths(rng, num_people, times, walk_speed, pass_gap, min_separation, pauses):
    """Per person: pelvis xy (T, 2), heading (T,), gait phase (T,), stride length, and a function
    giving the pelvis xy and heading at any gait phase (for footstep placement)."""
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
        cadence = rng.uniform(1.05, 1.15)  # gait cycles (two steps) per second
        stride = speed / cadence
        phase = _gait_phase(rng, times, cadence, pauses)
        c, s = np.cos(tilt), np.sin(tilt)
        rot = np.array([[c, -s], [s, c]])

        # the ellipse by arc length, so the pelvis moves at `stride` per gait cycle everywhere
        u_table = u0 + direction * np.linspace(0.0, 2 * np.pi, 721)
        step = np.hypot(a * np.diff(np.cos(u_table)), b * np.diff(np.sin(u_table)))
        s_table = np.concatenate([[0.0], np.cumsum(step)])

        def ellipse(ph, a=a, b=b, direction=direction, stride=stride, ph0=phase[0],
                    centre=centre, rot=rot, u_table=u_table, s_table=s_table):
            dist = (np.asarray(ph) - ph0) * stride
            laps, rem = np.divmod(dist, s_table[-1])
            u = direction * 2 * np.pi * laps + np.interp(rem, s_table, u_table)
            xy = centre + np.stack([a * np.cos(u), b * np.sin(u)], -1) @ rot.T
            tangent = direction * np.stack([-a * np.sin(u), b * np.cos(u)], -1) @ rot.T
            return xy, np.arctan2(tangent[..., 1], tangent[..., 0])

        xy, heading = ellipse(phase)
        paths.append({"xy": xy, "heading": np.unwrap(heading), "phase": phase, "stride": stride,
                      "ellipse": ellipse})
    _keep_apart(paths, times, min_separation)
    return paths


def _path_at_phase(path, times, ph):
    """Pelvis xy and heading at gait phases `ph` (nudges of `_keep_apart` at the matching time)."""
    xy, heading = path["ellipse"](ph)
    t = np.interp(ph, path["phase"], times)
    nudge = np.stack([np.interp(t, times, path["nudge"][:, k]) for k in range(2)], -1)
    return xy + nudge, heading


def _smootherstep(u):
    return u * u * u * (u * (6 * u - 15) + 10)


def _footsteps(path, times, rest, ankle_height):
    """World ankle targets (2, T, 3), foot yaw (2, T) and contact (2, T) bool of a walk.

    Foot f bears weight for the first `STANCE` of each of its gait cycles (the right foot's
    cycles start half a cycle after the left's), standing where the pelvis passes over it at
    mid-stance, beside it by the rest skeleton's ankle offset; in between it swings to the next
    footstep along a smootherstep, lifted by up to `STEP_HEIGHT` (zero velocity at both ends).
    """
    phase = path["phase"]
    n_lo, n_hi = int(np.floor(phase.min())) - 1, int(np.ceil(phase.max())) + 2
    targets, yaws, contact = np.zeros((2, len(times), 3)), np.zeros((2, len(times))), np.zeros((2, len(times)), bool)
    for f, (_, _, ankle, _) in enumerate(LEGS):
        cycles = np.arange(n_lo, n_hi)
        mid = cycles + 0.5 * f + 0.5 * STANCE
        xy, heading = _path_at_phase(path, times, mid)
        offset = rest[ankle, [0, 2]] - rest[0, [0, 2]]  # body left (x) and forward (z)
        left = np.stack([-np.sin(heading), np.cos(heading)], -1)
        forward = np.stack([np.cos(heading), np.sin(heading)], -1)
        place = xy + offset[0] * left + offset[1] * forward
        heading = np.unwrap(heading)
        c = phase - 0.5 * f
        n = np.floor(c).astype(int)
        frac = c - n
        i = n - n_lo
        u = _smootherstep(np.clip((frac - STANCE) / (1 - STANCE), 0.0, 1.0))
        targets[f, :, :2] = place[i] + u[:, None] * (place[i + 1] - place[i])
        targets[f, :, 2] = ankle_height + STEP_HEIGHT * np.sin(np.pi * u) ** 2
        yaws[f] = heading[i] + u * (heading[i + 1] - heading[i])
        contact[f] = frac <= STANCE
    return targets, yaws, contact


def _plant_legs(go, body, jaw, lh, rh, rest, path, times, ankle_height, fps):
    """transl (T, 3) and body pose with both legs solved by IK onto the footsteps; contact (T, 2).

    The pelvis height is the highest the legs allow: at most 96 % of each leg's reach from every
    foot target, through a smooth lower envelope (so the solve never clamps and the planted feet
    do not move at all)."""
    rot = full_pose_matrices(go, body, jaw, lh, rh)
    targets, yaws, contact = _footsteps(path, times, rest[0] if rest.ndim == 3 else rest, ankle_height)
    rest_t = np.broadcast_to(rest, rot.shape[:-2] + (3,))
    pelvis = rest_t[:, 0]
    hip_offset = np.einsum("tij,tfj->tfi", rot[:, 0], rest_t[:, [LEGS[0][0], LEGS[1][0]]] - pelvis[:, None])
    height = np.full(len(times), np.inf)
    for f in range(2):
        horizontal = path["xy"] + hip_offset[:, f, :2] - targets[f, :, :2]
        reach = leg_reach(rest_t, f, 0.96)
        vertical = np.sqrt(np.clip(reach**2 - np.sum(horizontal**2, -1), 0.0, None))
        height = np.minimum(height, targets[f, :, 2] + vertical - hip_offset[:, f, 2])
    pelvis_z = lower_envelope(height, max(1, int(round(0.2 * fps))))
    transl = np.concatenate([path["xy"], pelvis_z[:, None]], -1) - pelvis
    for f in range(2):
        rot = solve_leg(rot, rest_t, transl, f, targets[f], flat_foot_rotation(yaws[f]))
    return transl, matrix_to_axis_angle(rot[:, 1:22]), contact.T


def _keep_apart(paths, times, min_separation, iterations=30):
    """Nudge crossing people apart so that pelvises stay about `min_separation` apart (bodies
    do not walk through each other); the nudges are smoothed over time (sigma 0.25 s)."""
    for path in paths:
        path["nudge"] = np.zeros_like(path["xy"])
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
        path["nudge"] = xy[p] - xy0[p]
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

    global_orient = Rz(heading + 90 deg) Rx(90 deg) (see `body.ik.flat_foot_rotation`), then a small pelvis twist
    about body +Y. The legs here are only a starting point: `_plant_legs` solves them onto the
    footsteps. Arms swing against the legs, the spine counter-twists, the head nods.
    """
    T = len(times)
    # +1 when the left foot touches down (gait phase k), -1 half a cycle later (right foot)
    s = np.cos(2 * np.pi * path["phase"])
    zero = np.zeros(T)
    moving = np.gradient(path["phase"], axis=0) > 1e-6 if T > 1 else np.zeros(T, bool)
    s = s * _gaussian_smooth(moving.astype(np.float64), 3.0)  # arms settle while standing

    go = _compose(_rz(path["heading"] + np.pi / 2), _rx(np.full(T, np.pi / 2)), _ry(0.08 * s))
    body = np.zeros((T, 21, 3))
    for j in (2, 5, 8):                                 # spine1..3 counter-twist
        body[:, j] = _ry(-0.03 * s)
    body[:, 14] = _rx(0.05 * np.sin(4 * np.pi * path["phase"]))  # head nod
    arm_amp = rng.uniform(0.25, 0.4)
    swing_l, swing_r = -arm_amp * s, arm_amp * s        # arms swing against the legs
    body[:, 15] = _compose(_rx(-swing_l), _rz(np.full(T, -1.25)))  # left arm down from T-pose
    body[:, 16] = _compose(_rx(-swing_r), _rz(np.full(T, 1.25)))
    body[:, 17] = _ry(-(0.3 + 0.075 * (1 + s)))       # elbows bend forward, more when the arm does
    body[:, 18] = _ry(0.3 + 0.075 * (1 - s))
    noise = _smooth_noise(rng, times, (21, 3), 0.03, 0.5)  # a little life in every joint
    noise[:, list(LEG_BODY_JOINTS)] = 0.0                  # but the legs stay on their footsteps
    body += noise

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
