"""Contract 2: a take file becomes one collection of cameras, a point cloud and people.

`build_take` builds into a scene (the import operator), `build_take_file` is the command line's
`build TAKE -o OUT.blend`: a fresh empty scene, saved atomically.
"""

import logging
import math
import os

import bpy
import numpy as np

from ..body.model_file import configured_model
from ..errors import ChrommError
from ..io.atomic import atomic_output
from ..io.take import read_take
from .cameras import build_cameras
from .collection import Build, remove_take
from .people import build_people
from .points import build_point_cloud
from .props import BODY_PROP
from .render_setup import fill_render_setup, record_timing

log = logging.getLogger(__name__)

APPROXIMATE_NOTE = ("no SMPL-X model file configured: built procedural mannequins on the approximate "
                    "neutral skeleton (set --smplx or CHROMM_SMPLX_MODEL for SMPL-X bodies)")


def scene_fps(fps):
    """Blender's (fps int, fps_base) for a rate: NTSC rates (29.97, 23.976, 59.94) exactly."""
    fps = float(fps)
    for base in (1.0, 1.001):
        whole = round(fps * base)
        if whole >= 1 and abs(fps * base - whole) < 1e-3 * base * max(1.0, fps / 30):
            return int(whole), base
    whole = max(1, math.ceil(fps))
    return whole, whole / fps


def check_model_fits(take, model):
    if model is None:
        return
    for what, need, have in (("shape", take.betas.shape[1], model.shapedirs.shape[2]),
                             ("expression", take.expression.shape[2], model.exprdirs.shape[2])):
        if need > have:
            raise ChrommError(f"{model.path}: the take needs {need} {what} components, "
                              f"the model file has {have}")


def build_take(take, *, name=None, smplx_model=None, scene=None, pose_correctives=False):
    """Build a take into `scene` (default: the context's) and return its new collection.

    Timestep t is frame `scene.frame_start + t`; the scene's fps and frame_end follow the take.
    Without `smplx_model` people are mannequins on an approximate skeleton (the collection's
    `chromm_body` says so). The scene gets what F12 needs where it lacks it (`fill_render_setup`).
    On any error every data-block created so far is removed and the error propagates.
    """
    scene = scene or bpy.context.scene
    check_model_fits(take, smplx_model)
    name = name or str(take.meta.get("name") or "take")
    build = Build(name, scene)
    timing = scene.render.fps, scene.render.fps_base, scene.frame_end
    try:
        scene.render.fps, scene.render.fps_base = scene_fps(take.fps)
        frames = scene.frame_start + np.arange(take.num_frames)
        scene.frame_end = int(frames[-1])
        # People first: their armatures need edit mode, which updates the view layer, and that is
        # cheap before a million points are in it.
        build_people(build, take, smplx_model, frames, pose_correctives=pose_correctives)
        cameras = build_cameras(build, take, frames)
        build_point_cloud(build, take, scene.frame_start)
        fill_render_setup(build, cameras)
        record_timing(build.collection, take, scene.frame_start)
        if smplx_model is None:
            build.collection[BODY_PROP] = "approximate"
            if take.num_people:
                log.warning(APPROXIMATE_NOTE)
        else:
            build.collection[BODY_PROP] = smplx_model.path
    except BaseException:
        build.remove()
        scene.render.fps, scene.render.fps_base, scene.frame_end = timing
        raise
    return build.collection


def build_take_file(take_path, out_blend, smplx_path=None, pose_correctives=False):
    """Read a take, build it in a fresh empty scene and save `out_blend` atomically.

    Returns the notes for the user (e.g. that no model file was configured), which build_take
    also logs as warnings.
    """
    take = read_take(take_path)
    model = configured_model(smplx_path)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    name = os.path.splitext(os.path.basename(str(take_path)))[0]
    collection = build_take(take, name=name, smplx_model=model, pose_correctives=pose_correctives)
    notes = [APPROXIMATE_NOTE] if model is None and take.num_people else []
    try:
        with atomic_output(out_blend, suffix=".blend") as tmp:
            os.remove(tmp)  # Blender would keep an existing file as a .blend1 backup
            try:
                bpy.ops.wm.save_as_mainfile(filepath=tmp, check_existing=False, copy=True)
            except RuntimeError as exc:
                raise ChrommError(f"{out_blend}: cannot write the .blend ({str(exc).strip()})") from None
            finally:
                if os.path.exists(tmp + "1"):
                    os.remove(tmp + "1")
    except BaseException:
        remove_take(collection)
        raise
    return notes  # build_take has logged them (stderr on the command line)
