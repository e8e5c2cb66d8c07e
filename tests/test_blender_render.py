"""Built scenes render with F12's settings: an active camera, a world and a light are there, and
people are visible (SMPL-X mesh or the procedural mannequin), checked on real Cycles pixels at the
take's joints projected with OpenCV."""

import numpy as np
import pytest

from take_factory import make_take, standing_take

pytestmark = pytest.mark.blender


def _render(bpy, path):
    """F12 on the scene as built, with Cycles on the CPU at few samples (the only change)."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 4
    scene.cycles.use_denoising = False
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


def _projected_joints(take, model, view=0, t=0):
    import cv2

    from chromm_addon.backend.demo_network import take_joints

    joints = take_joints(take, model)[:, t, :22]  # body joints; fingers are sub-pixel here
    K, c2w = take.cam_K[view, t].astype(np.float64), take.cam_c2w[view, t].astype(np.float64)
    w2c = np.linalg.inv(c2w)
    rvec, _ = cv2.Rodrigues(w2c[:3, :3])
    pixels, _ = cv2.projectPoints(joints.reshape(-1, 1, 3), rvec, w2c[:3, 3], K, None)
    return pixels.reshape(joints.shape[0], 22, 2)


@pytest.mark.parametrize("with_model", [False, True])
def test_f12_render_shows_every_person(tmp_path, smplx_model_path, with_model):
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.exporters import take_people
    from chromm_addon.body.model_file import load_smplx_model

    bpy.ops.wm.read_factory_settings(use_empty=True)
    model = load_smplx_model(smplx_model_path) if with_model else None
    take = standing_take(T=2, P=2, size=(160, 120))
    collection = build_take(take, name="take", smplx_model=model)
    scene = bpy.context.scene
    assert scene.camera is not None and scene.camera["chromm_view"] == 0
    assert (scene.render.resolution_x, scene.render.resolution_y) == (160, 120)
    assert scene.world is not None and any(o.type == "LIGHT" for o in scene.objects)
    people = take_people(collection)
    assert all(mesh is not None for _, mesh in people)
    with_people = _render(bpy, tmp_path / "people.png")
    for arm, mesh in people:  # the same scene without its people: the background
        bpy.data.objects.remove(mesh)
        bpy.data.objects.remove(arm)
    background = _render(bpy, tmp_path / "background.png")
    assert background.mean() > 0.05  # the world lights the scene: not black
    pixels = np.round(_projected_joints(take, model)).astype(int)
    assert np.all((pixels >= 0) & (pixels < [160, 120]))
    for p in range(take.num_people):
        x, y = pixels[p, :, 0], pixels[p, :, 1]
        differs = np.abs(with_people[y, x] - background[y, x]).sum(-1) > 0.1
        assert differs.all(), (p, np.flatnonzero(~differs))


def test_build_fills_only_what_the_scene_lacks():
    import bpy

    from chromm_addon.blender.build import build_take, remove_take

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    user_cam = bpy.data.objects.new("my camera", bpy.data.cameras.new("my camera"))
    user_light = bpy.data.objects.new("my lamp", bpy.data.lights.new("my lamp", "POINT"))
    for obj in (user_cam, user_light):
        scene.collection.objects.link(obj)
    scene.camera = user_cam
    scene.world = user_world = bpy.data.worlds.new("my world")
    scene.render.resolution_x = 1234
    collection = build_take(make_take(T=3, P=1, V=2, N=20), name="take")
    assert scene.camera == user_cam and scene.world == user_world
    assert scene.render.resolution_x == 1234
    assert [o.name for o in scene.objects if o.type == "LIGHT"] == ["my lamp"]
    remove_take(collection)

    # An empty scene gets all three; removing the take removes them again.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    take = make_take(T=3, P=1, V=2, N=20)
    take.image_size[0] = (800, 600)
    collection = build_take(take, name="take")
    assert scene.camera.name == "take.view0"
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (
        800, 600, 100)
    assert scene.world.name == "take.world"
    assert [o.name for o in scene.objects if o.type == "LIGHT"] == ["take.sun"]
    assert (scene.frame_start, scene.frame_end) == (1, 3)
    remove_take(collection)
    assert scene.camera is None and scene.world is None and not bpy.data.lights and not bpy.data.worlds
