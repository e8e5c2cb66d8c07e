"""Reconstruct from views: collect clips, run the job in the background, apply the result.

The operator returns at once. A worker thread talks to the backend (chromm_addon.client.job); a
`bpy.app.timers` callback on the main thread redraws the panel and, when the take has been
downloaded, builds it into the scene as one undo step. The job lives in this module, not in the
panel, so closing the panel or the sidebar does not stop it.

The module keeps no Blender data (a `Scene` is invalid after File > New or Open): it keeps the
target scene's `session_uid` and name and looks the scene up when the result is applied. A
`load_post` handler detaches a running job from the file that was closed: the job runs on, its
take is kept on disk, and the panel says where instead of adding it to an unrelated file.
"""

import os
import shlex
import tempfile

import bpy
from bpy_extras.io_utils import ImportHelper

POLL_SECONDS = 0.5

_ACTIVE = {"job": None, "scene_uid": None, "scene_name": None, "detached": False, "name": None,
           "sources": None, "message": ""}


def active_job():
    return _ACTIVE["job"]


def last_message():
    return _ACTIVE["message"]


def _settings(context):
    return context.scene.chromm


def _connector(prefs, clip_dirs, service):
    """A callable the worker runs: start (or reuse) the local backend, or reach the remote one.
    `service`: the service-scope options (panels.properties.service_options)."""
    from ..chromm_addon.client.local_backend import shared_backend
    from ..chromm_addon.client.service import ServiceClient

    if prefs.backend_mode == "REMOTE":
        url, token = prefs.remote_url, prefs.remote_token
        return lambda: ServiceClient(url, token)
    from ..panels.preferences import backend_env_path

    env = backend_env_path(prefs)
    # Developer hook: extra `serve` arguments, e.g. "--tiny-network" to run without weights.
    extra = shlex.split(os.environ.get("CHROMM_BACKEND_ARGS", ""))
    if service["network"] != "auto":
        extra = ["--network", service["network"], *extra]

    def connect():
        backend = shared_backend(env, allow_dirs=sorted(clip_dirs), weights=service["weights"],
                                 smplx=service["smplx"], device=service["device"], extra_args=extra)
        url, token = backend.start()
        return ServiceClient(url, token)
    return connect


def _results_folder():
    if bpy.data.filepath:
        folder = os.path.join(os.path.dirname(bpy.data.filepath), "chromm_takes")
    else:
        folder = os.path.join(tempfile.gettempdir(), "chromm_takes")
    os.makedirs(folder, exist_ok=True)
    return folder


def _target_scene():
    """The scene the running job was started from, or None when it is gone (or the file closed)."""
    if _ACTIVE["detached"]:
        return None
    for scene in bpy.data.scenes:
        if scene.session_uid == _ACTIVE["scene_uid"]:
            return scene
    return bpy.data.scenes.get(_ACTIVE["scene_name"] or "")


@bpy.app.handlers.persistent
def _detach_on_load(*_args):
    """load_post: the file the job was started from is gone; the job no longer targets a scene."""
    job = _ACTIVE["job"]
    if job is not None and not job.finished:
        _ACTIVE["detached"] = True
        _ACTIVE["message"] = ("The file this reconstruction was started from was closed; it runs on "
                              "and its take will be kept on disk")


def poll_active_job():
    """Timer callback (also called directly by tests): redraw, apply a finished take."""
    from ..chromm_addon.client.job import FAILED, READY
    from ..chromm_addon.errors import ChrommError

    job = _ACTIVE["job"]
    if job is None:
        return None
    _redraw()
    snap = job.snapshot()
    scene = _target_scene() if snap["state"] == READY else None
    if snap["state"] == READY and scene is None:
        where = ("the file it was started from was closed" if _ACTIVE["detached"]
                 else f"its scene {_ACTIVE['scene_name']!r} is gone")
        reason = f"{where}; the take is kept at {snap['take_path']} (File > Import > CHROMM take)"
        job.fail(f"not added: {reason}")
        _ACTIVE["message"] = f"Reconstruction finished but not added: {reason}"
        return None
    elif snap["state"] == READY:
        settings = scene.chromm
        from ..chromm_addon.blender.results import apply_take
        from ..panels.preferences import get_preferences

        prefs = get_preferences()
        smplx = bpy.path.abspath(prefs.smplx_model) if prefs and prefs.smplx_model else None
        try:
            collection, summary = apply_take(
                scene, snap["take_path"], _ACTIVE["name"], smplx_path=smplx,
                replace=settings.last_take if settings.replace_previous else None,
                sources=_ACTIVE["sources"], views_path=snap.get("views_path"))
        except ChrommError as exc:
            job.fail(str(exc))
        else:
            settings.last_take = collection
            settings.summary = summary
            job.mark_applied()
            _ACTIVE["message"] = f"Reconstruction added: {summary}"
            if not bpy.app.background:
                bpy.ops.ed.undo_push(message="CHROMM reconstruction")
    snap = job.snapshot()
    if snap["state"] == FAILED:
        _ACTIVE["message"] = f"Reconstruction failed: {snap['error']}"
    return None if job.finished else POLL_SECONDS


def _redraw():
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


class CHROMM_OT_reconstruct(bpy.types.Operator):
    """Send the enabled clips to the backend and add the reconstruction to the scene when done"""

    bl_idname = "chromm.reconstruct"
    bl_label = "Reconstruct"

    @classmethod
    def poll(cls, context):
        job = active_job()
        return (job is None or job.finished) and any(c.enabled for c in _settings(context).clips)

    def execute(self, context):
        from ..chromm_addon.client.job import JobWorker, Reconstruction
        from ..panels.preferences import get_preferences

        settings = _settings(context)
        prefs = get_preferences(context)
        clips = [c for c in settings.clips if c.enabled]
        paths = [bpy.path.abspath(c.path) for c in clips]
        for path in paths:
            if not os.path.isfile(path):
                self.report({"ERROR"}, f"{path}: clip not found; fix or disable it in the list")
                return {"CANCELLED"}
        if prefs.backend_mode == "LOCAL" and not prefs.backend_env:
            self.report({"ERROR"}, "No backend environment set: open Preferences > Add-ons > "
                                   "CHROMM and choose it, then press Check")
            return {"CANCELLED"}
        from ..panels.properties import job_options, service_options

        from ..chromm_addon.errors import ChrommError

        notes = []
        try:
            options = job_options(settings, clips, prefs, notes)
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if options.get("end") is not None and options["end"] <= options.get("start", 0.0):
            self.report({"ERROR"}, "The time range ends before it starts")
            return {"CANCELLED"}
        connect = _connector(prefs, {os.path.dirname(p) for p in paths}, service_options(settings, prefs))
        job = Reconstruction(connect, paths, _results_folder(), options)
        _ACTIVE.update(job=job, scene_uid=context.scene.session_uid, scene_name=context.scene.name,
                       detached=False, message="",
                       name=os.path.splitext(os.path.basename(paths[0]))[0] + "_chromm",
                       sources=[{"path": p, "start_time": c.offset} for p, c in zip(paths, clips)])
        JobWorker(job, interval=POLL_SECONDS).start()
        if not bpy.app.timers.is_registered(poll_active_job):
            bpy.app.timers.register(poll_active_job, first_interval=POLL_SECONDS, persistent=True)
        for note in notes:  # typed-in cameras replacing the file's
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"Reconstruction of {len(paths)} clips started")
        return {"FINISHED"}


class CHROMM_OT_cancel_job(bpy.types.Operator):
    """Cancel the running reconstruction"""

    bl_idname = "chromm.cancel_job"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        job = active_job()
        return job is not None and not job.finished

    def execute(self, context):
        active_job().cancel()
        self.report({"INFO"}, "Cancelling the reconstruction")
        return {"FINISHED"}


def _add_clip(settings, path, movieclip=None, offset=0.0):
    for existing in settings.clips:
        if bpy.path.abspath(existing.path) == bpy.path.abspath(path):
            return existing
    item = settings.clips.add()
    item.name = os.path.basename(path)
    item.path = path
    item.offset = offset
    if movieclip is not None:
        item.movieclip = movieclip
    settings.active_clip = len(settings.clips) - 1
    return item


def _strips(scene):
    editor = scene.sequence_editor
    if editor is None:
        return []
    strips = getattr(editor, "strips_all", None) or getattr(editor, "sequences_all", [])
    return [s for s in strips if s.type == "MOVIE"]


class CHROMM_OT_clips_from_sequencer(bpy.types.Operator):
    """Use the selected movie strips of the Sequencer; their placement on the timeline sets the offsets"""

    bl_idname = "chromm.clips_from_sequencer"
    bl_label = "From Sequencer"

    def execute(self, context):
        scene = context.scene
        strips = [s for s in _strips(scene) if s.select] or _strips(scene)
        if not strips:
            self.report({"WARNING"}, "No movie strips in the Sequencer")
            return {"CANCELLED"}
        scene_fps = scene.render.fps / scene.render.fps_base
        # The common zero is the scene frame where the last strip begins. A movie strip shows one
        # of its own frames per scene frame, so that scene frame lies (zero - frame_start) of the
        # clip's frames into it: seconds at the clip's rate, not the scene's.
        zero = max(s.frame_start for s in strips)
        retimed = []
        for strip in strips:
            item = _add_clip(scene.chromm, bpy.path.abspath(strip.filepath))
            item.offset = (zero - strip.frame_start) / (strip.fps or scene_fps)
            if len(strip.retiming_keys):
                retimed.append(strip.name)
        if retimed:
            self.report({"WARNING"}, f"Retimed strips ({', '.join(retimed)}): their offsets assume "
                                     "normal speed; check them or press Sync Clips")
        self.report({"INFO"}, f"{len(strips)} clips from the Sequencer")
        return {"FINISHED"}


_SYNC = {"job": None, "scene": None, "paths": None, "message": ""}


def sync_message():
    return _SYNC["message"]


def poll_sync_job():
    """Timer callback (also called directly by tests): fill the clips' offsets when the job ends."""
    from ..chromm_addon.client.sync_job import DONE, FAILED

    job = _SYNC["job"]
    if job is None:
        return None
    state, report, error = job.snapshot()
    if state == FAILED:
        _SYNC.update(job=None, message=f"Sync failed: {error}")
    elif state == DONE:
        clips = {bpy.path.abspath(c.path): c for c in _SYNC["scene"].chromm.clips}
        for path, row in zip(_SYNC["paths"], report["clips"]):
            item = clips.get(path)
            if item is not None and row["offset_s"] is not None:
                item.offset = row["offset_s"]
                item.sync_confidence = row["confidence"] if row["confidence"] is not None else 0.0
        notes = report.get("notes") or []
        _SYNC.update(job=None, message=f"Synced by {report['method']}" + (f"; {notes[0]}" if notes else ""))
    _redraw()
    return None if _SYNC["job"] is None else POLL_SECONDS


class CHROMM_OT_sync_clips(bpy.types.Operator):
    """Find each enabled clip's offset from its audio or the people's motion (runs in the background)"""

    bl_idname = "chromm.sync_clips"
    bl_label = "Sync Clips"

    @classmethod
    def poll(cls, context):
        return _SYNC["job"] is None and sum(c.enabled for c in _settings(context).clips) >= 2

    def execute(self, context):
        from ..chromm_addon.client.sync_job import SyncJob
        from ..chromm_addon.errors import ChrommError
        from ..panels.preferences import get_preferences

        prefs = get_preferences(context)
        settings = _settings(context)
        paths = [bpy.path.abspath(c.path) for c in settings.clips if c.enabled]
        method = settings.sync if settings.sync in ("audio", "motion") else "auto"
        extra = shlex.split(os.environ.get("CHROMM_BACKEND_ARGS", "")) if method != "audio" else []
        try:
            job = SyncJob(prefs.backend_env and bpy.path.abspath(prefs.backend_env), paths, method,
                          [a for a in extra if a == "--tiny-network"]).start()
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _SYNC.update(job=job, scene=context.scene, paths=paths, message="Synchronising clips...")
        if not bpy.app.timers.is_registered(poll_sync_job):
            bpy.app.timers.register(poll_sync_job, first_interval=POLL_SECONDS, persistent=True)
        return {"FINISHED"}


class CHROMM_OT_clips_from_movieclips(bpy.types.Operator):
    """Use every movie clip loaded in this file"""

    bl_idname = "chromm.clips_from_movieclips"
    bl_label = "From Movie Clips"

    def execute(self, context):
        clips = [c for c in bpy.data.movieclips if c.source == "MOVIE"]
        if not clips:
            self.report({"WARNING"}, "No movie clips in this file (open one in the Movie Clip Editor)")
            return {"CANCELLED"}
        for clip in clips:
            _add_clip(context.scene.chromm, bpy.path.abspath(clip.filepath), movieclip=clip)
        self.report({"INFO"}, f"{len(clips)} movie clips added")
        return {"FINISHED"}


class CHROMM_OT_clip_add(bpy.types.Operator, ImportHelper):
    """Add video files as clips"""

    bl_idname = "chromm.clip_add"
    bl_label = "Add Clips"
    filter_glob: bpy.props.StringProperty(default="*.mp4;*.mov;*.avi;*.mkv;*.webm;*.m4v", options={"HIDDEN"})
    files: bpy.props.CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    directory: bpy.props.StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context):
        names = [f.name for f in self.files if f.name] or [os.path.basename(self.filepath)]
        folder = self.directory or os.path.dirname(self.filepath)
        for name in names:
            path = os.path.join(folder, name)
            clip = None
            try:
                clip = bpy.data.movieclips.load(path, check_existing=True)  # for the thumbnail
            except RuntimeError:
                self.report({"WARNING"}, f"{path}: Blender cannot preview this clip")
            _add_clip(context.scene.chromm, path, movieclip=clip)
        return {"FINISHED"}


class CHROMM_OT_clip_remove(bpy.types.Operator):
    """Remove the active clip from the list"""

    bl_idname = "chromm.clip_remove"
    bl_label = "Remove Clip"

    @classmethod
    def poll(cls, context):
        return len(context.scene.chromm.clips) > 0

    def execute(self, context):
        settings = context.scene.chromm
        settings.clips.remove(settings.active_clip)
        settings.active_clip = max(0, min(settings.active_clip, len(settings.clips) - 1))
        return {"FINISHED"}


class CHROMM_OT_select_take(bpy.types.Operator):
    """Select the objects of the last reconstruction"""

    bl_idname = "chromm.select_take"
    bl_label = "Select Result"

    @classmethod
    def poll(cls, context):
        return context.scene.chromm.last_take is not None

    def execute(self, context):
        collection = context.scene.chromm.last_take
        for obj in context.view_layer.objects:
            obj.select_set(obj.name in collection.all_objects)
        people = [o for o in collection.all_objects if o.type == "ARMATURE"]
        if people:
            context.view_layer.objects.active = people[0]
        return {"FINISHED"}


CLASSES = (CHROMM_OT_reconstruct, CHROMM_OT_cancel_job, CHROMM_OT_clips_from_sequencer, CHROMM_OT_sync_clips,
           CHROMM_OT_clips_from_movieclips, CHROMM_OT_clip_add, CHROMM_OT_clip_remove,
           CHROMM_OT_select_take)


def register_extra():
    if _detach_on_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_detach_on_load)


def unregister_extra():
    if _detach_on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_detach_on_load)
    for timer in (poll_active_job, poll_sync_job):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
    from ..chromm_addon.client.local_backend import stop_shared_backend

    stop_shared_backend()
