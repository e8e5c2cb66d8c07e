"""Overlay render: a take's people drawn over one view's source clip, to a video and a PNG still.

The people (SMPL-X mesh or mannequin, each in its colour) are rendered from the view's camera
with a transparent film in a temporary scene that links only the take's people and that camera,
so the user's scene, its settings and its other objects are untouched. Workbench is used where
it runs (it does headless here, through software OpenGL), Cycles at 4 samples otherwise. Each
rendered RGBA layer is blended at `ALPHA` over the source frame in numpy, the names are written
above the heads with Pillow, and the frames are encoded with PyAV (H.264, yuv420p).

Source frames come from the backend's clip reader (`backend.video.open_clip` and
`backend.timeline.sample`), the same decoding as reconstruction: timestep t shows the clip frame
nearest to clip time `start_time + frame_times[t]` (`start_time` from the take's meta `sources`).

A view whose lens was undistorted before the network (the source's `lens`, from known cameras)
is undistorted here with the same maps (`backend.undistort.Undistorter` from the same K, model and
coefficients), so the people line up with the footage up to the edges; without OpenCV (inside
Blender) the frames are shown as recorded and a note says so.

Everything is written through `atomic_output`: a failed or cancelled render leaves neither the
video nor the still behind.
"""

import contextlib
import fractions
import os
import tempfile
import time

import bpy
import numpy as np

from ..errors import ChrommError
from ..io.atomic import atomic_output
from .cameras import IMAGE_SIZE_PROP, set_view_resolution
from .exporters import take_people
from .people import COLOUR_PROP
from .render_setup import FRAME_START_PROP, FRAME_TIMES_PROP, collection_sources, take_cameras

ALPHA = 0.6              # opacity of the bodies over the footage
CYCLES_SAMPLES = 4
RENDER_AA = "FXAA"       # Workbench anti-aliasing: one pass (its default, 8 samples, is 8 passes)
ENGINES = ("AUTO", "WORKBENCH", "CYCLES")


def parse_timesteps(text, count, what="--frames"):
    """'A:B' -> range(A, B) of timesteps (0-based, B excluded; either side may be left out)."""
    if text is None or text == "":
        return range(0, count)
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start = int(parts[0]) if parts[0].strip() else 0
        stop = int(parts[1]) if parts[1].strip() else count
    except ValueError:
        raise ChrommError(f"{what} {text!r}: expected A:B (timesteps, 0-based, B excluded)") from None
    if not 0 <= start < stop <= count:
        raise ChrommError(f"{what} {text!r}: the take has timesteps 0..{count - 1}, "
                          f"so A:B needs 0 <= A < B <= {count}")
    return range(start, stop)


def overlay_source(label, view, view_names, sources):
    """(clip path, start time) of a view from a take's `sources` (one line errors otherwise)."""
    if not 0 <= view < len(view_names):
        raise ChrommError(f"{label}: view {view} is out of range (the take has {len(view_names)} "
                          f"views: 0..{len(view_names) - 1})")
    source = sources[view] if view < len(sources or []) else None
    if not source or not source.get("path"):
        raise ChrommError(f"{label}: no source clip is recorded for view {view} ({view_names[view]})")
    path = source["path"]
    if not os.path.exists(path):
        raise ChrommError(f"{path}: source clip of view {view} not found (moved or deleted?)")
    return path, float(source.get("start_time") or 0.0)


def source_lens(source, size, label):
    """(undistorter or None, note or None) for a view's recorded source: the reconstruction's
    undistortion of its lens, or a one-line note when it cannot run here (no OpenCV)."""
    lens = (source or {}).get("lens")
    if not lens:
        return None, None
    try:
        import cv2  # noqa: F401
    except ImportError:
        return None, (f"{label}: the clip's {lens['model']} lens is not undistorted here (no OpenCV in this "
                      "Python): frames are shown as recorded; `python -m chromm_addon render` undistorts them")
    from ..backend.undistort import Undistorter

    return Undistorter(lens["K"], lens["model"], lens["coefficients"], size), None


def render_take_file(take_path, view, video_path, still_path=None, frames=None, smplx_path=None,
                     engine="AUTO", scale=1.0, progress=None, notes=None):
    """The `render` command: build the take in a fresh empty scene and render its overlay."""
    from ..body.model_file import configured_model
    from ..io.take import read_take
    from .build import build_take

    take = read_take(take_path)
    overlay_source(str(take_path), view, take.view_names, take.meta.get("sources") or [])
    timesteps = parse_timesteps(frames, take.num_frames)
    model = configured_model(smplx_path)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    name = os.path.splitext(os.path.basename(str(take_path)))[0]
    collection = build_take(take, name=name, smplx_model=model)
    return render_overlay(collection, view, video_path, still_path, timesteps, engine=engine,
                          scale=scale, progress=progress, notes=notes)


def overlay_steps(collection, view, video_path, still_path=None, timesteps=None, sources=None,
                  engine="AUTO", scale=1.0, notes=None):
    """Render the overlay; a generator yielding (frames done, total) after each frame.

    Closing the generator early (cancel) removes everything it had started writing. Output frame
    i shows timestep timesteps[i] (default: all of the take). `scale` sizes the output relative
    to the view's image size (whole percent, as Blender's resolution percentage). `notes` (a
    list) receives what could not be done (an undistorted lens shown as recorded).
    """
    from ..backend.timeline import Timeline, sample
    from ..backend.video import open_clip

    if engine not in ENGINES:
        raise ChrommError(f"render engine {engine!r}: one of {', '.join(ENGINES)}")
    cams = take_cameras(collection)
    sources = collection_sources(collection) if sources is None else sources
    clip_path, start_time = overlay_source(collection.name, view, [c.name for c in cams], sources)
    cam = cams[view]
    frame_times = np.asarray(collection.get(FRAME_TIMES_PROP, []), dtype=np.float64)
    frame_start = int(collection.get(FRAME_START_PROP, bpy.context.scene.frame_start))
    count = len(frame_times)
    timesteps = range(count) if timesteps is None else timesteps
    if not len(timesteps) or timesteps[0] < 0 or timesteps[-1] >= count:
        raise ChrommError(f"{collection.name}: timesteps {timesteps.start}:{timesteps.stop} are "
                          f"outside the take's 0..{count - 1}")
    percent = int(round(100 * float(scale)))
    if not 1 <= percent <= 100:
        raise ChrommError(f"overlay scale {scale!r}: between 0.01 and 1")
    clip = open_clip(clip_path)
    undistort, note = source_lens(sources[view], (clip.width, clip.height), f"view {view}")
    if note and notes is not None:
        notes.append(note)
    width, height = (int(s) * percent // 100 for s in cam[IMAGE_SIZE_PROP])
    fps = float(1.0 / np.median(np.diff(frame_times))) if count > 1 else 30.0
    # The backend's sampler walks a uniform timeline; the take's timesteps are on one (at its fps).
    timeline = Timeline(start=float(frame_times[timesteps[0]]), fps=fps, count=len(timesteps))
    total = len(timesteps)
    still_index = total // 2
    with contextlib.ExitStack() as stack:
        video_tmp = stack.enter_context(atomic_output(video_path, suffix=".mp4"))
        still_tmp = stack.enter_context(atomic_output(still_path, suffix=".png")) if still_path else None
        render = stack.enter_context(PeopleRenderer(collection, cam, (width, height), percent, engine))
        writer = stack.enter_context(_VideoWriter(video_tmp, fps, width, height))
        frames = sample([clip], [start_time], timeline, prefetch=2)
        stack.callback(frames.close)
        done = 0
        for (k, (image,)), t in zip(frames, timesteps):
            layer, labels = render(frame_start + t)
            if undistort is not None:
                image = undistort(image)
            out = composite(_fit(image, width, height), layer, labels)
            writer.write(out)
            if done == still_index and still_tmp:
                _save_png(out, still_tmp)
            done += 1
            yield done, total
        if done < total:
            raise ChrommError(f"{clip_path}: the clip ends before timestep {timesteps[done]} "
                              f"(clip time {start_time + frame_times[timesteps[done]]:.3f} s)")
        writer.finish()


def render_overlay(collection, view, video_path, still_path=None, timesteps=None, sources=None,
                   engine="AUTO", scale=1.0, progress=None, cancel=None, notes=None):
    """Run `overlay_steps` to the end; `progress(done, total)` after each frame, `cancel()` may
    raise to stop (nothing is left written). Returns the number of frames."""
    steps = overlay_steps(collection, view, video_path, still_path, timesteps, sources, engine, scale, notes)
    done = 0
    try:
        for done, total in steps:
            if progress is not None:
                progress(done, total)
            if cancel is not None:
                cancel()
    finally:
        steps.close()
    return done


def composite(image, layer, labels, alpha=ALPHA):
    """The RGBA `layer` blended at `alpha` over the RGB `image`, with text labels
    [(text, (x, y), (r, g, b))] centred at (x, y). Returns uint8 RGB."""
    from PIL import Image, ImageDraw, ImageFont

    a = layer[..., 3:4].astype(np.float32) * (alpha / 255.0)
    out = image.astype(np.float32) * (1.0 - a) + layer[..., :3].astype(np.float32) * a
    out = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    if labels:
        draw = ImageDraw.Draw(out)
        font = ImageFont.load_default(size=max(10, out.height // 30))
        for text, (x, y), colour in labels:
            fill = tuple(int(round(255 * c)) for c in colour)
            draw.text((x, y), text, fill=fill, font=font, anchor="md", stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(out)


def _fit(image, width, height):
    """The source frame at the take camera's image size (it is, unless the clip was re-encoded)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def _save_png(rgb, path):
    from PIL import Image

    Image.fromarray(rgb).save(path, format="PNG", optimize=True)


class PeopleRenderer:
    """A temporary scene with the take's people and one camera, rendering RGBA layers."""

    def __init__(self, collection, cam, size, percent, engine):
        self.collection, self.cam, self.size, self.engine = collection, cam, size, engine
        self.percent = percent
        self.people = take_people(collection)
        self.scene = None

    def __enter__(self):
        scene = self.scene = bpy.data.scenes.new("chromm overlay")
        for arm, mesh in self.people:
            scene.collection.objects.link(arm)
            if mesh is not None:
                scene.collection.objects.link(mesh)
        scene.collection.objects.link(self.cam)
        scene.camera = self.cam
        set_view_resolution(scene, self.cam)
        render = scene.render
        render.resolution_percentage = self.percent
        render.film_transparent = True
        render.image_settings.file_format = "PNG"
        render.image_settings.color_mode = "RGBA"
        render.image_settings.color_depth = "8"
        scene.view_settings.view_transform = "Standard"  # colours as set, no filmic tone curve
        shading = scene.display.shading
        shading.light, shading.color_type = "STUDIO", "MATERIAL"
        scene.display.render_aa = RENDER_AA
        scene.cycles.samples = CYCLES_SAMPLES
        scene.cycles.use_denoising = False
        scene.cycles.device = "CPU"
        world = self.world = bpy.data.worlds.new("chromm overlay")  # lights Cycles evenly
        world.color = (1.0, 1.0, 1.0)
        if bpy.app.version < (5, 0):
            world.use_nodes = True
        background = next(n for n in world.node_tree.nodes if n.bl_idname == "ShaderNodeBackground")
        background.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        scene.world = world
        self.folder = tempfile.mkdtemp(prefix="chromm-overlay-")
        self.engines = ["BLENDER_WORKBENCH", "CYCLES"] if self.engine == "AUTO" else [
            "BLENDER_WORKBENCH" if self.engine == "WORKBENCH" else "CYCLES"]
        return self

    def __exit__(self, *exc):
        if self.scene is not None:
            bpy.data.scenes.remove(self.scene)
            bpy.data.worlds.remove(self.world)
            self.scene = None
        with contextlib.suppress(OSError):
            for name in os.listdir(self.folder):
                os.remove(os.path.join(self.folder, name))
            os.rmdir(self.folder)
        return False

    def __call__(self, frame):
        """(RGBA uint8 (H, W, 4), name labels) of the people at a scene frame."""
        from PIL import Image

        scene = self.scene
        scene.frame_set(int(frame))
        path = os.path.join(self.folder, "layer.png")
        scene.render.filepath = path
        while True:
            scene.render.engine = self.engines[0]
            try:
                # The context override makes the render evaluate this scene at its frame (the
                # operator's `scene` argument alone renders the originals' current state).
                with _quiet_stdout(), bpy.context.temp_override(scene=scene):
                    bpy.ops.render.render(write_still=True)
                break
            except RuntimeError as exc:
                if len(self.engines) == 1:
                    raise ChrommError(f"overlay: Blender cannot render here ({str(exc).strip()})") from None
                self.engines.pop(0)  # Workbench needs OpenGL; fall back to Cycles on the CPU
        with Image.open(path) as img:
            layer = np.asarray(img.convert("RGBA"))
        return layer, self._labels()

    def _labels(self):
        from bpy_extras.object_utils import world_to_camera_view
        from mathutils import Vector

        width, height = self.size
        labels = []
        prefix = self.collection.name + "."
        for arm, mesh in self.people:
            body = mesh or arm
            if body.hide_render:
                continue
            head = arm.matrix_world @ arm.pose.bones["head"].head + Vector((0.0, 0.0, 0.3))
            x, y, z = world_to_camera_view(self.scene, self.cam, head)
            if z <= 0 or not (0 <= x <= 1 and 0 <= y <= 1):
                continue
            name = arm.name[len(prefix):] if arm.name.startswith(prefix) else arm.name
            labels.append((name, (x * width, (1.0 - y) * height), tuple(arm.get(COLOUR_PROP, (1, 1, 1)))))
        return labels


@contextlib.contextmanager
def _quiet_stdout():
    import sys

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (Blender's UI): nothing to hide
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class _VideoWriter:
    """H.264 (yuv420p) with PyAV at the take's rate; odd sizes lose their last row/column."""

    def __init__(self, path, fps, width, height):
        self.path, self.width, self.height = path, width - width % 2, height - height % 2
        self.rate = fractions.Fraction(fps).limit_denominator(1001)
        self.container = None

    def __enter__(self):
        import av

        try:
            self.container = av.open(self.path, mode="w", format="mp4")
        except OSError as exc:
            raise ChrommError(f"{self.path}: cannot write the video ({exc})") from None
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self.stream = self.container.add_stream(codec, rate=self.rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        if codec == "libx264":
            self.stream.options = {"crf": "20", "preset": "veryfast"}
        return self

    def write(self, rgb):
        import av

        rgb = np.ascontiguousarray(rgb[:self.height, :self.width])
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def finish(self):
        for packet in self.stream.encode():
            self.container.mux(packet)

    def __exit__(self, *exc):
        if self.container is not None:
            self.container.close()
        return False


def progress_text(done, total, started, clock=time.monotonic):
    """'12/120 frames, 00:34 left' for the add-on's status line."""
    from ..backend.progress import format_eta

    elapsed = clock() - started
    left = elapsed / done * (total - done) if done else None
    return f"{done}/{total} frames, {format_eta(left)} left"
