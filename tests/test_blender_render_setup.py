"""Render helpers: source clips behind cameras aligned in time, look-through, camera cuts."""

import numpy as np
import pytest

from take_factory import make_take

pytestmark = pytest.mark.blender


def _write_clip(path, frames=20, fps=25.0, size=(64, 48)):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), i * 10 % 255, np.uint8))
    writer.release()
    return str(path)


def test_clip_behind_camera_starts_at_its_offset(tmp_path):
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.render_setup import attach_sources_from_meta, take_cameras

    bpy.ops.wm.read_factory_settings(use_empty=True)
    take = make_take(T=4, P=1, V=2, N=10)
    clips = [_write_clip(tmp_path / f"v{v}.avi") for v in range(2)]
    take.meta["sources"] = [{"path": clips[0], "start_time": 0.0},
                            {"path": clips[1], "start_time": 0.4}]
    scene = bpy.context.scene
    collection = build_take(take, name="take")
    assert attach_sources_from_meta(collection, take.meta, scene) == [0, 1]
    cams = take_cameras(collection)
    for cam, start in zip(cams, (0.0, 0.4)):
        (bg,) = cam.data.background_images
        assert cam.data.show_background_images and bg.source == "MOVIE_CLIP"
        assert bg.clip.frame_duration == 20
        # Clip frame shown at the take's first frame = start_time * clip fps.
        assert scene.frame_start - bg.clip.frame_start == round(start * bg.clip.fps)


def test_undistorted_lens_is_blenders_brown_model_on_the_clip(tmp_path):
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.render_setup import attach_sources_from_meta, take_cameras

    bpy.ops.wm.read_factory_settings(use_empty=True)
    take = make_take(T=2, P=0, V=3, N=5)
    clips = [_write_clip(tmp_path / f"v{v}.avi") for v in range(3)]
    take.meta["sources"] = [{"path": c, "start_time": 0.0} for c in clips]
    K = [[50.0, 0.0, 31.0], [0.0, 52.0, 24.5], [0.0, 0.0, 1.0]]
    take.meta["known_cameras"] = {"distortion": [
        {"model": "pinhole", "coefficients": [-0.2, 0.05, 0.0, 0.0, 0.01, 0, 0, 0], "K": K},
        {"model": "pinhole", "coefficients": [-0.2, 0.05, 0.001, 0.0, 0.0, 0, 0, 0], "K": K},
        {"model": "fisheye", "coefficients": [0.1, 0, 0, 0], "K": K}]}
    collection = build_take(take, name="take")
    attach_sources_from_meta(collection, take.meta, bpy.context.scene)
    brown, tangential, fisheye = (cam.data.background_images[0] for cam in take_cameras(collection))
    assert brown.clip_user.use_render_undistorted
    assert not tangential.clip_user.use_render_undistorted and not fisheye.clip_user.use_render_undistorted
    lens = brown.clip.tracking.camera
    assert lens.distortion_model == "BROWN"
    assert lens.focal_length_pixels == pytest.approx(50.0) and lens.pixel_aspect == pytest.approx(52 / 50)
    assert tuple(lens.principal_point_pixels) == pytest.approx((31.5, 48 - 25.0))
    assert (lens.brown_k1, lens.brown_k2, lens.brown_k3) == pytest.approx((-0.2, 0.05, 0.01))


@pytest.mark.slow
def test_blenders_undistortion_of_a_radial_lens_brings_the_image_towards_the_pinhole_view(tmp_path):
    """A scene rendered through an OpenCV radial lens, undistorted by Blender's compositor (Movie
    Distortion node) with the clip lens we set, against the same scene through the pinhole."""
    import cv2
    import bpy

    from chromm_addon.blender.render_setup import set_clip_lens
    from test_undistort import pattern

    w, h = 320, 240
    K = np.array([[200.0, 0, 165.0], [0, 200.0, 112.0], [0, 0, 1]])
    dist = np.array([-0.2, 0.05, 0.0, 0.0, 0.0])
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-10)
    rays = cv2.undistortPointsIter(np.stack([u, v], -1).reshape(-1, 1, 2), K, dist, None, None, crit).reshape(h, w, 2)
    recorded = np.clip(pattern(rays[..., 0], rays[..., 1]), 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "recorded.png"), recorded)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    clip = bpy.data.movieclips.load(str(tmp_path / "recorded.png"))
    assert set_clip_lens(clip, {"model": "pinhole", "coefficients": list(dist), "K": K.tolist()})
    tree = bpy.data.node_groups.new("undistort", "CompositorNodeTree")
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    image = tree.nodes.new("CompositorNodeImage")
    image.image = bpy.data.images.load(str(tmp_path / "recorded.png"))
    node = tree.nodes.new("CompositorNodeMovieDistortion")
    node.clip = clip
    out = tree.nodes.new("NodeGroupOutput")
    tree.links.new(image.outputs["Image"], node.inputs["Image"])
    tree.links.new(node.outputs["Image"], out.inputs[0])
    scene.compositing_node_group = tree
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = w, h, 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "BW"
    scene.view_settings.view_transform = "Standard"
    scene.render.filepath = str(tmp_path / "blender.png")
    bpy.ops.render.render(write_still=True)
    got = cv2.imread(str(tmp_path / "blender.png"), cv2.IMREAD_GRAYSCALE).astype(float)
    pinhole = np.clip(pattern((u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]), 0, 255)
    inner = np.zeros((h, w), bool)
    inner[20:-20, 20:-20] = True
    blender_err = np.median(np.abs(got - pinhole)[inner])
    recorded_err = np.median(np.abs(recorded - pinhole)[inner])
    assert blender_err < 0.5 * recorded_err, (blender_err, recorded_err)


def test_missing_clip_is_reported(tmp_path):
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.render_setup import attach_source_clip, take_cameras
    from chromm_addon.errors import ChrommError

    bpy.ops.wm.read_factory_settings(use_empty=True)
    cam = take_cameras(build_take(make_take(T=2, P=0, V=1, N=5), name="take"))[0]
    with pytest.raises(ChrommError, match="not found"):
        attach_source_clip(cam, str(tmp_path / "nope.mp4"), bpy.context.scene)


def test_look_through_and_cuts_switch_the_active_camera():
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.render_setup import add_cut, look_through, take_cameras

    bpy.ops.wm.read_factory_settings(use_empty=True)
    take = make_take(T=6, P=0, V=2, N=5)
    take.image_size[1] = (720, 1280)
    scene = bpy.context.scene
    cams = take_cameras(build_take(take, name="take"))
    look_through(scene, cams[1])
    assert scene.camera == cams[1]
    assert (scene.render.resolution_x, scene.render.resolution_y) == (720, 1280)
    add_cut(scene, cams[0], scene.frame_start)
    add_cut(scene, cams[1], scene.frame_start + 3)
    add_cut(scene, cams[0], scene.frame_start + 3)  # replaces the cut at that frame
    assert len(scene.timeline_markers) == 2
    scene.frame_set(scene.frame_start + 4)
    assert scene.camera == cams[0]
