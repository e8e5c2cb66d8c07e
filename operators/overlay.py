"""Render Overlay: the last result's people over one view's source clip, to a video and a still.

In the UI the operator is modal: one frame per timer tick, progress and time left in the status
bar, Esc cancels (nothing is left written). Run from a script (`EXEC_DEFAULT`) it renders to the
end at once.
"""

import os
import tempfile
import time

import bpy

from ..chromm_addon.blender.props import VIEW_PROP


def default_output(collection, view):
    """`<take>_view<N>_overlay.mp4` beside the saved .blend, else in the temporary folder."""
    folder = os.path.dirname(bpy.data.filepath) if bpy.data.filepath else tempfile.gettempdir()
    return os.path.join(folder, bpy.path.clean_name(f"{collection.name}_view{view}_overlay") + ".mp4")


class CHROMM_OT_render_overlay(bpy.types.Operator):
    """Render the people (colour per person, semi-transparent, named) over this view's source clip,
    to a video and a PNG still (Esc cancels)"""

    bl_idname = "chromm.render_overlay"
    bl_label = "Render Overlay"

    view: bpy.props.IntProperty(name="View", default=-1, min=-1,
                                description="View index; -1: the active camera's view (else view 0)")
    filepath: bpy.props.StringProperty(name="Video", subtype="FILE_PATH", default="",
                                       description="Output .mp4 (empty: <take>_view<N>_overlay.mp4 "
                                                   "beside the .blend, or in the temporary folder)")

    @classmethod
    def poll(cls, context):
        return context.scene.chromm.last_take is not None

    def _start(self, context):
        from ..chromm_addon.blender.overlay import overlay_steps

        collection = context.scene.chromm.last_take
        view = self.view
        if view < 0:
            cam = context.scene.camera
            view = int(cam[VIEW_PROP]) if cam is not None and VIEW_PROP in cam \
                and cam.name in collection.all_objects else 0
        video = bpy.path.abspath(self.filepath) if self.filepath else default_output(collection, view)
        self._video, self._still = video, os.path.splitext(video)[0] + ".png"
        self._notes = []  # a lens that cannot be undistorted here (no OpenCV in Blender)
        self._steps = overlay_steps(collection, view, self._video, self._still, notes=self._notes)
        self._started = time.monotonic()
        self._done = 0

    def _step(self):
        """Render one frame; False when finished. ChrommError propagates (steps closed)."""
        from ..chromm_addon.errors import ChrommError

        try:
            self._done, self._total = next(self._steps)
        except StopIteration:
            return False
        except ChrommError:
            self._steps.close()
            raise
        return True

    def _finished(self):
        return "; ".join([f"Overlay: {self._done} frames -> {self._video} (still: {self._still})", *self._notes])

    def execute(self, context):
        from ..chromm_addon.errors import ChrommError

        try:
            self._start(context)
            while self._step():
                pass
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, self._finished())
        return {"FINISHED"}

    def invoke(self, context, event):
        from ..chromm_addon.errors import ChrommError

        if context.window is None:
            return self.execute(context)
        try:
            self._start(context)
            if not self._step():  # the first frame checks the input at once
                self.report({"INFO"}, self._finished())
                return {"FINISHED"}
        except ChrommError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0, self._total)
        self._timer = wm.event_timer_add(0.01, window=context.window)
        wm.modal_handler_add(self)
        self._show(context)
        return {"RUNNING_MODAL"}

    def _show(self, context):
        from ..chromm_addon.blender.overlay import progress_text

        context.window_manager.progress_update(self._done)
        context.workspace.status_text_set(
            f"Render Overlay: {progress_text(self._done, self._total, self._started)} (Esc cancels)")

    def _end(self, context):
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)

    def modal(self, context, event):
        from ..chromm_addon.errors import ChrommError

        if event.type == "ESC":
            self._steps.close()  # removes the unfinished files
            self._end(context)
            self.report({"WARNING"}, "Render Overlay cancelled; nothing written")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            more = self._step()
        except ChrommError as exc:
            self._end(context)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if not more:
            self._end(context)
            self.report({"INFO"}, self._finished())
            return {"FINISHED"}
        self._show(context)
        return {"RUNNING_MODAL"}


CLASSES = (CHROMM_OT_render_overlay,)
