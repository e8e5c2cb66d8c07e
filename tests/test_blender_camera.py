"""Built cameras project like OpenCV: Blender's world_to_camera_view against cv2.projectPoints."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from chromm_addon.io.take import Take, make_meta

pytestmark = pytest.mark.blender

# (W, H), fx, fy, cx, cy: landscape and portrait, off-centre principal points, fx != fy both ways.
VIEWS = [((640, 480), 520.0, 520.0, 301.3, 262.8),
         ((480, 720), 610.0, 655.0, 251.0, 330.5),
         ((1280, 720), 980.0, 900.0, 700.2, 341.7),
         ((720, 1280), 1050.0, 1120.0, 333.3, 690.9)]
T = 4


def _camera_take():
    rng = np.random.default_rng(11)
    V = len(VIEWS)
    K = np.zeros((V, T, 3, 3), np.float32)
    c2w = np.tile(np.eye(4, dtype=np.float32), (V, T, 1, 1))
    for v, (_, fx, fy, cx, cy) in enumerate(VIEWS):
        for t in range(T):
            s = 1.0 + 0.1 * t  # zoom over time, fx/fy fixed per view
            K[v, t] = [[fx * s, 0, cx + 3 * t], [0, fy * s, cy - 2 * t], [0, 0, 1]]
            c2w[v, t, :3, :3] = Rotation.random(random_state=rng).as_matrix()
            c2w[v, t, :3, 3] = rng.uniform(-3, 3, 3)
    P = 0
    return Take(
        meta=make_meta(30.0, [f"cam{v}" for v in range(V)], 10, 10),
        frame_times=np.arange(T) / 30.0,
        image_size=np.array([v[0] for v in VIEWS], np.int32), cam_K=K, cam_c2w=c2w,
        points=rng.normal(size=(10, 3)).astype(np.float32),
        colors=rng.integers(0, 255, (10, 3)).astype(np.uint8),
        person_ids=np.zeros(P, np.int32), betas=np.zeros((P, 10), np.float32),
        expression=np.zeros((P, T, 10), np.float32), global_orient=np.zeros((P, T, 3), np.float32),
        jaw_pose=np.zeros((P, T, 3), np.float32), body_pose=np.zeros((P, T, 21, 3), np.float32),
        left_hand_pose=np.zeros((P, T, 15, 3), np.float32),
        right_hand_pose=np.zeros((P, T, 15, 3), np.float32),
        transl=np.zeros((P, T, 3), np.float32), valid=np.zeros((P, T), bool))


def test_blender_projection_equals_opencv():
    import bpy
    import cv2
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.cameras import set_view_resolution

    bpy.ops.wm.read_factory_settings(use_empty=True)
    take = _camera_take()
    scene = bpy.context.scene
    scene.frame_start = 5
    collection = build_take(take, name="cams")
    cams = sorted((o for o in collection.all_objects if o.type == "CAMERA"), key=lambda o: o["chromm_view"])
    assert [o["chromm_view"] for o in cams] == list(range(len(VIEWS)))
    rng = np.random.default_rng(5)
    worst = 0.0
    for v, cam in enumerate(cams):
        (W, H) = VIEWS[v][0]
        assert list(cam["chromm_image_size"]) == [W, H]
        assert set_view_resolution(scene, cam)
        scene.camera = cam
        for t in range(T):
            scene.frame_set(scene.frame_start + t)
            K = take.cam_K[v, t].astype(np.float64)
            c2w = take.cam_c2w[v, t].astype(np.float64)
            # Random points in front of the camera, spread over (and a bit beyond) the image.
            pix = rng.uniform([-50, -50], [W + 50, H + 50], (40, 2))
            depth = rng.uniform(0.5, 20.0, 40)
            cam_pts = np.linalg.solve(K, np.concatenate([pix, np.ones((40, 1))], 1).T).T * depth[:, None]
            world = cam_pts @ c2w[:3, :3].T + c2w[:3, 3]
            R_w2c = c2w[:3, :3].T
            t_w2c = -R_w2c @ c2w[:3, 3]
            ref, _ = cv2.projectPoints(world, cv2.Rodrigues(R_w2c)[0], t_w2c, K, None)
            ref = ref.reshape(-1, 2)
            got = np.array([world_to_camera_view(scene, cam, Vector(p))[:2] for p in world])
            # Blender's normalized coordinates: (0, 0) bottom-left corner of the frame.
            got_px = np.stack([got[:, 0] * W - 0.5, (1.0 - got[:, 1]) * H - 0.5], axis=1)
            err = np.abs(got_px - ref).max()
            worst = max(worst, err)
            assert err < 0.01, (v, t, err)
    assert worst > 0.0  # both sides computed independently


def test_set_view_resolution_refuses_other_cameras():
    import bpy

    from chromm_addon.blender.cameras import set_view_resolution

    bpy.ops.wm.read_factory_settings(use_empty=True)
    cam = bpy.data.objects.new("plain", bpy.data.cameras.new("plain"))
    assert not set_view_resolution(bpy.context.scene, cam)
