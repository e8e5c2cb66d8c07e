"""Rendering helpers for a built take: what F12 needs (active camera, world, light), source clips
behind their cameras, aligned in time; looking through a view; timeline markers that cut between
views.

Where the clips are comes from the take's meta `sources` (one entry per view, written by
`reconstruct`: {"path": clip, "start_time": seconds into the clip at timestep 0}) or from the
caller (the add-on's clip list).

A clip whose lens was undistorted before the network (take meta `known_cameras.distortion`) is
shown undistorted when Blender's movie-clip distortion can express the lens: OpenCV's pinhole
model with radial terms only (k1 k2 k3; p1 p2 and k4..k6 zero) is Blender's Brown-Conrady model,
with "render undistorted" on the background. The reconstruction kept the camera matrix for
such lenses (backend/undistort.py), so Blender's undistorted frame lines up with the take's
camera. Other lenses (fisheye, tangential or rational terms) are shown as recorded.
"""

import json
import os

from ..errors import ChrommError
from .cameras import VIEW_PROP, set_view_resolution
from .props import FRAME_START_PROP, FRAME_TIMES_PROP, SOURCES_PROP  # noqa: F401 (re-exported)


WORLD_GREY = 0.18        # linear grey of the neutral world (background and ambient light)
SUN_STRENGTH = 3.0       # W/m^2, key light from above and in front
SUN_ROTATION = (0.75, 0.15, 0.6)  # Euler XYZ radians: the sun's -Z points down at about 45 degrees


def fill_render_setup(build, cameras):
    """Make the scene renderable with F12, filling only what it lacks.

    No active camera: the take's first view, at its resolution (100 %) and lens. No world: a
    neutral grey one. No light: a sun in the take's collection. What the user already has (their
    camera, world, lights) is left as it is. Returns the names of what was added.
    """
    import bpy

    scene, added = build.scene, []
    if scene.camera is None and cameras:
        look_through(scene, cameras[0])
        added.append("camera")
    if scene.world is None:
        world = build.tag(bpy.data.worlds.new(f"{build.collection.name}.world"))
        if bpy.app.version < (5, 0):
            world.use_nodes = True
        world.color = (WORLD_GREY,) * 3
        background = next(n for n in world.node_tree.nodes if n.bl_idname == "ShaderNodeBackground")
        background.inputs["Color"].default_value = (WORLD_GREY, WORLD_GREY, WORLD_GREY, 1.0)
        background.inputs["Strength"].default_value = 1.0
        scene.world = world
        added.append("world")
    if not any(o.type == "LIGHT" for o in scene.objects):
        sun = build.tag(bpy.data.lights.new(f"{build.collection.name}.sun", "SUN"))
        sun.energy = SUN_STRENGTH
        obj = build.new_object(f"{build.collection.name}.sun", sun)
        obj.rotation_euler = SUN_ROTATION
        added.append("light")
    return added


def record_timing(collection, take, frame_start):
    """Keep on the take's collection what renders against the source clips need later: the scene
    frame of timestep 0, the take's frame times and its per-view source clips."""
    collection[FRAME_START_PROP] = int(frame_start)
    collection[FRAME_TIMES_PROP] = [float(t) for t in take.frame_times]
    collection[SOURCES_PROP] = json.dumps(take.meta.get("sources") or [])


def collection_sources(collection):
    """The per-view source clips recorded on a built take ([] when none)."""
    try:
        return json.loads(collection.get(SOURCES_PROP, "[]")) or []
    except ValueError:
        return []


def take_cameras(collection):
    """The take's camera objects in view order."""
    cams = [o for o in collection.all_objects if o.type == "CAMERA" and VIEW_PROP in o]
    return sorted(cams, key=lambda o: o[VIEW_PROP])


def set_clip_lens(clip, distortion):
    """Blender's Brown-Conrady distortion on the clip from OpenCV's pinhole model; False when the
    lens cannot be expressed (fisheye, rational or tangential terms) or none is given.

    distortion: {"model", "coefficients" (OpenCV order k1 k2 p1 p2 k3 k4 k5 k6), "K" (3x3, pixels
    of the clip, OpenCV: pixel centres at integers, y down)}. Blender's tracking camera measures
    the principal point from the frame's bottom-left corner, y up: (cx + 0.5, H - cy - 0.5).
    Only the radial terms k1 k2 k3 are used: Blender's compositor undistortion with p1 or p2 set
    did not reproduce OpenCV's tangential terms in any sign convention we tried (docs/cameras.md).
    """
    if not distortion or distortion.get("model") != "pinhole":
        return False
    k = list(distortion["coefficients"]) + [0.0] * 8
    if any(abs(c) > 0 for c in (k[2], k[3], *k[5:8])):
        return False
    K = distortion["K"]
    width, height = clip.size
    cam = clip.tracking.camera
    cam.units = "PIXELS"
    cam.distortion_model = "BROWN"
    cam.focal_length_pixels = float(K[0][0])
    cam.pixel_aspect = float(K[1][1]) / float(K[0][0])
    cam.principal_point_pixels = (float(K[0][2]) + 0.5, float(height) - float(K[1][2]) - 0.5)
    cam.brown_k1, cam.brown_k2, cam.brown_k3, cam.brown_k4 = float(k[0]), float(k[1]), float(k[4]), 0.0
    cam.brown_p1 = cam.brown_p2 = 0.0
    return True


def attach_source_clip(camera_obj, clip_path, scene, start_time=0.0, alpha=1.0, distortion=None):
    """Show `clip_path` behind the camera so that clip time `start_time` is at scene.frame_start.

    Blender plays a movie clip one clip frame per scene frame from `clip.frame_start`, so the clip
    starts `start_time * clip_fps` frames before the take. Returns the MovieClip.
    """
    import bpy

    if not os.path.isfile(clip_path):
        raise ChrommError(f"{clip_path}: source clip not found")
    try:
        clip = bpy.data.movieclips.load(clip_path, check_existing=True)
    except RuntimeError as exc:
        raise ChrommError(f"{clip_path}: Blender cannot open this clip ({str(exc).strip()})") from None
    clip.frame_start = scene.frame_start - int(round(start_time * clip.fps))
    cam = camera_obj.data
    cam.show_background_images = True
    for bg in list(cam.background_images):  # one source clip per camera
        if bg.source == "MOVIE_CLIP":
            cam.background_images.remove(bg)
    bg = cam.background_images.new()
    bg.source = "MOVIE_CLIP"
    bg.clip = clip
    bg.use_camera_clip = False
    bg.alpha = alpha
    bg.frame_method = "FIT"
    bg.clip_user.use_render_undistorted = set_clip_lens(clip, distortion)
    return clip


def attach_sources_from_meta(collection, take_meta, scene):
    """Attach every view's clip listed in the take meta `sources`; returns the views done."""
    done = []
    lenses = (take_meta.get("known_cameras") or {}).get("distortion") or []
    for v, (cam, source) in enumerate(zip(take_cameras(collection), take_meta.get("sources") or [])):
        if source and source.get("path") and os.path.isfile(source["path"]):
            lens = source.get("lens") or (lenses[v] if v < len(lenses) else None)
            attach_source_clip(cam, source["path"], scene, float(source.get("start_time", 0.0)), distortion=lens)
            done.append(cam[VIEW_PROP])
    return done


def look_through(scene, camera_obj):
    """Make the camera active with the scene resolution of its view."""
    scene.camera = camera_obj
    set_view_resolution(scene, camera_obj)


def add_cut(scene, camera_obj, frame):
    """A timeline marker at `frame` that switches the active camera to this view."""
    name = f"{camera_obj.name}@{frame}"
    for marker in scene.timeline_markers:
        if marker.frame == frame:
            scene.timeline_markers.remove(marker)
    marker = scene.timeline_markers.new(name, frame=int(frame))
    marker.camera = camera_obj
    return marker
