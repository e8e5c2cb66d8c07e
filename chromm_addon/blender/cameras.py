"""One animated camera per view: extrinsics and intrinsics per timestep from the take."""

import bpy
import numpy as np

from ..geometry.camera import camera_location_quaternion, opencv_to_blender_intrinsics
from .animation import Channel, animate, vector_channels
from .points import bounding_box
from .props import IMAGE_SIZE_PROP, PIXEL_ASPECT_PROP, VIEW_PROP



def build_cameras(build, take, frames):
    """Camera objects, one per view, keyed at `frames` (scene frame of each timestep)."""
    cameras = []
    scene_box = bounding_box(take.points) if len(take.points) else None
    for v, view_name in enumerate(take.view_names):
        size = [int(s) for s in take.image_size[v]]
        intr = opencv_to_blender_intrinsics(take.cam_K[v], size)
        loc, quat = camera_location_quaternion(take.cam_c2w[v])
        data = bpy.data.cameras.new(f"{view_name}")
        data.sensor_fit = intr.sensor_fit
        data.sensor_width = data.sensor_height = intr.sensor_mm
        data.lens_unit = "MILLIMETERS"
        data.lens, data.shift_x, data.shift_y = intr.lens[0], intr.shift_x[0], intr.shift_y[0]
        near_far_from_scene(data, loc, scene_box)
        obj = build.new_object(f"{build.collection.name}.{view_name}", data)
        obj[VIEW_PROP] = v
        obj[IMAGE_SIZE_PROP] = size
        obj[PIXEL_ASPECT_PROP] = list(intr.pixel_aspect)
        obj.rotation_mode = "QUATERNION"
        obj.location = loc[0]
        obj.rotation_quaternion = quat[0]
        group = "Object Transforms"
        animate(obj, f"{obj.name}.transform", frames,
                vector_channels("location", loc, group) + vector_channels("rotation_quaternion", quat, group))
        build.tag(obj.animation_data.action)
        animate(data, f"{obj.name}.lens", frames,
                [Channel("lens", 0, intr.lens), Channel("shift_x", 0, intr.shift_x),
                 Channel("shift_y", 0, intr.shift_y)], id_type="CAMERA")
        build.tag(data.animation_data.action)
        cameras.append(obj)
    return cameras


def near_far_from_scene(camera_data, locations, scene_box):
    """Clip range: 1 cm to at least 100 m and twice the scene's extent seen from any position."""
    extent = 100.0
    if scene_box is not None:
        lo, hi = scene_box
        extent = max(extent, 2.0 * float(np.linalg.norm(hi - lo) + np.abs(locations).max()))
    camera_data.clip_start = 0.01
    camera_data.clip_end = extent


def set_view_resolution(scene, camera_obj):
    """Scene resolution and pixel aspect of the camera's view (100 %); False if not a take camera."""
    size = camera_obj.get(IMAGE_SIZE_PROP)
    if size is None:
        return False
    aspect = camera_obj.get(PIXEL_ASPECT_PROP, (1.0, 1.0))
    render = scene.render
    render.resolution_x, render.resolution_y = int(size[0]), int(size[1])
    render.resolution_percentage = 100
    render.pixel_aspect_x, render.pixel_aspect_y = float(aspect[0]), float(aspect[1])
    return True
