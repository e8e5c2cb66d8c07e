"""The weights branch of `make demo`: render a short multi-view sample, reconstruct it with the
real network, build the .blend, and draw the reconstructed joints over one view.

The sample is the synthetic scene of `evaluation.synthetic` (people walking past cameras on a
ring) drawn with OpenCV as shaded mannequins (limbs as capsules, a head) over a floor of scene
points, written as one .mp4 per view.
"""

import os

import numpy as np

from ..body.lbs import full_pose_matrices, posed_joints
from ..body.skeleton import PARENTS, approximate_rest_joints

# Body joints drawn as limbs (pelvis .. wrists, neck, head); hands and face are too small here.
BODY_JOINTS = tuple(range(22))
LIMB_RADIUS_M = {0: 0.11, 3: 0.1, 6: 0.1, 9: 0.11, 12: 0.06, 15: 0.1}  # torso and head thicker
DEFAULT_RADIUS_M = 0.055
PERSON_COLOURS = ((66, 135, 245), (245, 130, 50), (80, 200, 120), (220, 80, 200))


def network_available(weights_dir=None):
    """(True, None) when the weight files are installed, else (False, why)."""
    from ..network.registry import missing_weights

    problem = missing_weights(weights_dir)
    return problem is None, problem


def _project(K, c2w, points):
    import cv2

    w2c = np.linalg.inv(c2w)
    rvec, _ = cv2.Rodrigues(w2c[:3, :3])
    pixels, _ = cv2.projectPoints(np.asarray(points, np.float64).reshape(-1, 1, 3), rvec, w2c[:3, 3],
                                  np.asarray(K, np.float64), None)
    depth = (np.asarray(points) @ w2c[:3, :3].T + w2c[:3, 3])[:, 2]
    return pixels.reshape(-1, 2), depth


def render_frame(scene, joints, view, t):
    """One RGB frame of `scene` (joints: (P, T, 55, 3) world) seen from `view` at timestep t."""
    import cv2

    width, height = (int(x) for x in scene.image_size[view])
    K, c2w = scene.cam_K[view, t], scene.cam_c2w[view, t]
    image = np.empty((height, width, 3), np.uint8)
    image[:] = np.linspace(70, 170, height, dtype=np.uint8)[:, None, None]  # sky-to-floor shade
    pix, depth = _project(K, c2w, scene.points)
    xy = np.round(pix).astype(np.int64)
    seen = (depth > 0.1) & (xy[:, 0] >= 0) & (xy[:, 0] < width - 1) & (xy[:, 1] >= 0) & (xy[:, 1] < height - 1)
    for dx in (0, 1):  # 2x2 dots
        for dy in (0, 1):
            image[xy[seen, 1] + dy, xy[seen, 0] + dx] = scene.colors[seen]
    focal = float(K[0, 0])
    people = []
    for p in range(joints.shape[0]):
        px, dz = _project(K, c2w, joints[p, t, BODY_JOINTS])
        if np.all(dz > 0.2):
            people.append((float(dz.mean()), p, px, dz))
    for _, p, px, dz in sorted(people, reverse=True):  # far to near
        colour = PERSON_COLOURS[p % len(PERSON_COLOURS)]
        skin = (224, 172, 135)
        for j in BODY_JOINTS[1:]:
            parent = PARENTS[j]
            radius = LIMB_RADIUS_M.get(parent, DEFAULT_RADIUS_M)
            thickness = max(1, int(2 * radius * focal / max(dz[j], dz[parent])))
            cv2.line(image, tuple(px[parent].astype(int)), tuple(px[j].astype(int)),
                     skin if j in (20, 21, 15) else colour, thickness, cv2.LINE_AA)
        head = px[15].astype(int)
        cv2.circle(image, tuple(head), max(2, int(0.11 * focal / dz[15])), skin, -1, cv2.LINE_AA)
    return image


def render_sample(folder, num_views=3, seconds=2.0, fps=10.0, num_people=2, image_size=(640, 360),
                  seed=0, model=None):
    """Write one .mp4 per view of a synthetic scene; returns (paths, scene, joints)."""
    from ..evaluation.synthetic import make_scene

    frames = max(2, int(round(seconds * fps)))
    scene = make_scene(num_people=num_people, num_views=num_views, num_frames=frames, fps=fps, seed=seed,
                       image_size=tuple(image_size), camera_radius=(4.5, 5.5), model=model)
    joints = scene.joints(model)
    paths = [write_view_clip(os.path.join(folder, f"cam{v}.mp4"), scene, joints, v) for v in range(num_views)]
    return paths, scene, joints


def write_view_clip(path, scene, joints, view):
    """One view of a synthetic scene (every timestep, at its fps) as an .mp4; returns the path."""
    import cv2

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    width, height = (int(x) for x in scene.image_size[view])
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(scene.fps), (width, height))
    for t in range(scene.num_frames):
        writer.write(cv2.cvtColor(render_frame(scene, joints, view, t), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def take_joints(take, model=None):
    """(P, T, 55, 3) world joints of a take (rest skeleton from the model, else approximate)."""
    hands_mean = None if take.flat_hand_mean or model is None else (model.hands_mean_left,
                                                                    model.hands_mean_right)
    rot = full_pose_matrices(take.global_orient, take.body_pose, take.jaw_pose, take.left_hand_pose,
                             take.right_hand_pose, hands_mean=hands_mean)
    out = np.zeros(rot.shape[:3] + (3,))
    for p in range(take.num_people):
        rest = model.rest_joints(take.betas[p]) if model is not None else approximate_rest_joints()
        out[p] = posed_joints(rest, take.betas[p], rot[p], take.transl[p])
    return out


def draw_preview(image, take, joints, view, t):
    """The take's joints of every valid person at timestep t, projected into `view`, over `image`."""
    import cv2

    out = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    K, c2w = take.cam_K[view, t].astype(np.float64), take.cam_c2w[view, t].astype(np.float64)
    drawn = 0
    for p in range(take.num_people):
        if not take.valid[p, t]:
            continue
        px, dz = _project(K, c2w, joints[p, t, BODY_JOINTS])
        if np.any(dz <= 0) or not np.all(np.isfinite(px)):
            continue
        colour = (0, 255, 255) if p % 2 == 0 else (255, 0, 255)
        for j in BODY_JOINTS[1:]:
            cv2.line(out, tuple(px[PARENTS[j]].astype(int)), tuple(px[j].astype(int)), colour, 2, cv2.LINE_AA)
        for x, y in px.astype(int):
            cv2.circle(out, (int(x), int(y)), 3, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.putText(out, f"id {int(take.person_ids[p])}", tuple(px[15].astype(int) + [5, -10]),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        drawn += 1
    return out, drawn


def run_network_demo(out, smplx=None, weights=None, device="auto", num_views=3, num_people=2, seconds=2.0,
                     fps=10.0, image_size=(640, 360), seed=0, blend=True, runner=None, window=None):
    """Render the sample, reconstruct it (take, views, .blend), write preview.png. Returns a dict
    of the files written."""
    import cv2

    from ..body.model_file import configured_model, resolve_model_path
    from ..io.take import read_take
    from ..options import ReconstructOptions
    from .pipeline import reconstruct
    from .progress import TerminalBar

    model_path = resolve_model_path(smplx)
    model = configured_model(model_path)
    os.makedirs(out, exist_ok=True)
    clips, scene, _ = render_sample(os.path.join(out, "clips"), num_views, seconds, fps, num_people,
                                    image_size, seed, model)
    print(f"sample: {num_people} people, {num_views} views of {image_size[0]}x{image_size[1]}, "
          f"{scene.num_frames} frames at {fps:g} fps -> {os.path.dirname(clips[0])}")
    files = {"take": os.path.join(out, "take.npz"), "views": os.path.join(out, "views.npz"),
             "blend": os.path.join(out, "take.blend") if blend else None,
             "preview": os.path.join(out, "preview.png")}
    options = ReconstructOptions(clips=clips, device=device, weights=weights, smplx=model_path, seed=seed,
                                 window=window)
    bar = TerminalBar()
    try:
        stats = reconstruct(options, files["take"], views_out=files["views"], blend_out=files["blend"],
                            runner=runner, progress=bar)
    finally:
        bar.finish()
    take = read_take(files["take"])
    joints = take_joints(take, model)
    view, t = 0, take.num_frames // 2
    cap = cv2.VideoCapture(clips[view])
    image = None
    for _ in range(t + 1):
        ok, frame = cap.read()
        if not ok:
            break
        image = frame
    cap.release()
    preview, drawn = draw_preview(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), take, joints, view, t)
    cv2.imwrite(files["preview"], preview)
    print(f"network: {stats.timesteps} timesteps in {stats.windows} window(s), {stats.detections} detections; "
          f"take: {take.num_people} people -> {files['take']}")
    print(f"preview: {drawn} bodies' joints over view {take.view_names[view]!r} at timestep {t} -> {files['preview']}")
    if blend:
        print(f"blend: {files['blend']}")
    return files
