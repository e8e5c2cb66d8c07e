"""The "CHROMM" sidebar tab: Reconstruct from views, the result, export and retarget."""

import bpy

from ..chromm_addon.blender.props import VIEW_PROP


def _job_state():
    from ..operators.reconstruct import active_job, last_message

    job = active_job()
    return (job.snapshot() if job is not None else None), last_message()


def _eta_text(seconds):
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f", {seconds // 60}:{seconds % 60:02d} left"


class CHROMM_UL_clips(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.label(text=item.name or item.path, icon="FILE_MOVIE")
        row.prop(item, "offset", text="")
        if item.sync_confidence >= 0:
            row.label(text=f"{item.sync_confidence:.2f}", icon="CHECKMARK" if item.sync_confidence >= 0.25 else "ERROR")


def _draw_known_camera(layout, clip):
    """The camera knowledge typed in for one clip (collapsed by default; docs/cameras.md)."""
    from ..chromm_addon.io.cameras import LENS_KEYS

    box = layout.box()
    box.prop(clip, "show_camera", icon="TRIA_DOWN" if clip.show_camera else "TRIA_RIGHT", emboss=False)
    if not clip.show_camera:
        return
    box.prop(clip, "use_intrinsics")
    if clip.use_intrinsics:
        col = box.column(align=True)
        for names in (("fx", "fy"), ("cx", "cy"), ("image_width", "image_height")):
            row = col.row(align=True)
            for name in names:
                row.prop(clip, name)
    box.prop(clip, "lens")
    if clip.lens != "NONE":
        col = box.column(align=True)
        for name in LENS_KEYS[clip.lens.lower()]:
            col.prop(clip, name)
    box.prop(clip, "use_pose")
    if clip.use_pose:
        box.prop(clip, "location")
        box.prop(clip, "rotation")


def _draw_fusion(layout, settings):
    """Every option of the test-time modules, generated from the options schema."""
    from ..chromm_addon.options import JOB
    from .properties import addon_leaves

    box = layout.box()
    box.prop(settings, "show_fusion", icon="TRIA_DOWN" if settings.show_fusion else "TRIA_RIGHT", emboss=False)
    if settings.show_fusion:
        col = box.column(align=True)
        for leaf in addon_leaves((JOB,)):
            if leaf.path[0] == "fuse":
                col.prop(settings, leaf.key)


class _SidebarPanel:
    """The CHROMM tab of the 3D viewport's sidebar."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "CHROMM"


class VIEW3D_PT_chromm_reconstruct(_SidebarPanel, bpy.types.Panel):
    bl_label = "Reconstruct from views"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.chromm
        row = layout.row()
        row.template_list("CHROMM_UL_clips", "", settings, "clips", settings, "active_clip", rows=3)
        col = row.column(align=True)
        col.operator("chromm.clip_add", icon="ADD", text="")
        col.operator("chromm.clip_remove", icon="REMOVE", text="")
        row = layout.row(align=True)
        row.operator("chromm.clips_from_sequencer", icon="SEQUENCE")
        row.operator("chromm.clips_from_movieclips", icon="TRACKER")
        row = layout.row(align=True)
        row.operator("chromm.sync_clips", icon="UV_SYNC_SELECT")
        row.prop(settings, "sync", text="")
        from ..operators.reconstruct import sync_message

        if sync_message():
            layout.label(text=sync_message())
        if 0 <= settings.active_clip < len(settings.clips):
            clip = settings.clips[settings.active_clip]
            box = layout.box()
            if clip.movieclip is not None:
                box.template_icon(icon_value=layout.icon(clip.movieclip), scale=5.0)
            box.prop(clip, "path", text="")
            box.prop(clip, "offset")
            _draw_known_camera(box, clip)

        layout.prop(settings, "cameras_file")
        col = layout.column(align=True)
        col.prop(settings, "fps")
        col.prop(settings, "use_range")
        if settings.use_range:
            sub = col.row(align=True)
            sub.prop(settings, "start")
            sub.prop(settings, "end")
        layout.prop(settings, "network")
        layout.prop(settings, "device")
        layout.prop(settings, "window")
        layout.prop(settings, "replace_previous")
        _draw_fusion(layout, settings)

        snap, message = _job_state()
        running = snap is not None and snap["state"] in ("connecting", "queued", "running",
                                                          "downloading", "ready")
        if running:
            box = layout.box()
            text = f"{snap['stage']}: {snap['fraction'] * 100:.0f} %{_eta_text(snap['eta_s'])}"
            if hasattr(box, "progress"):
                box.progress(factor=snap["fraction"], type="BAR", text=text)
            else:  # Blender 4.2 has no progress widget
                box.label(text=text, icon="TIME")
            box.operator("chromm.cancel_job", icon="CANCEL")
        else:
            layout.operator("chromm.reconstruct", icon="PLAY")
        if message:
            layout.label(text=message, icon="ERROR" if "failed" in message or "not added" in message else "INFO")


class _ResultPanel(_SidebarPanel):
    """A sub-panel shown once there is a result."""

    bl_parent_id = "VIEW3D_PT_chromm_reconstruct"

    @classmethod
    def poll(cls, context):
        return context.scene.chromm.last_take is not None


class VIEW3D_PT_chromm_result(_ResultPanel, bpy.types.Panel):
    bl_label = "Result"

    def draw(self, context):
        from ..chromm_addon.blender.render_setup import take_cameras

        layout = self.layout
        settings = context.scene.chromm
        layout.label(text=settings.last_take.name, icon="OUTLINER_COLLECTION")
        layout.label(text=settings.summary)
        layout.operator("chromm.select_take", icon="RESTRICT_SELECT_OFF")
        layout.operator("chromm.attach_sources", icon="IMAGE_BACKGROUND")
        layout.operator("chromm.render_overlay", icon="RENDER_ANIMATION").view = -1
        for cam in take_cameras(settings.last_take):
            row = layout.row(align=True)
            row.label(text=cam.name, icon="CAMERA_DATA")
            row.operator("chromm.look_through", text="", icon="HIDE_OFF").view = cam[VIEW_PROP]
            row.operator("chromm.add_cut", text="", icon="MARKER_HLT").view = cam[VIEW_PROP]
            row.operator("chromm.render_overlay", text="",
                         icon="RENDER_ANIMATION").view = cam[VIEW_PROP]


class VIEW3D_PT_chromm_people(_ResultPanel, bpy.types.Panel):
    bl_label = "People"

    def draw(self, context):
        from ..chromm_addon.blender.people_edits import take_people
        from ..chromm_addon.blender.people import PERSON_PROP

        layout = self.layout
        take = context.scene.chromm.last_take
        arms = {o[PERSON_PROP]: o for o in take.all_objects if o.type == "ARMATURE" and PERSON_PROP in o}
        layout.prop(context.scene, "chromm_person_other")
        other = context.scene.chromm_person_other
        for pid, name, _, frames, views in take_people(take):
            box = layout.box()
            row = box.row(align=True)
            row.prop(arms[pid], "color", text="")
            row.label(text=f"{pid}: {name}  ({frames} frames, {views} views)")
            op = row.operator("chromm.person_rename", text="", icon="GREASEPENCIL")
            op.person, op.name = pid, name
            row = box.row(align=True)
            op = row.operator("chromm.person_swap", text=f"Swap with {other}")
            op.person, op.other = pid, other
            op = row.operator("chromm.person_merge", text=f"Merge {other} in")
            op.person, op.other = pid, other
            row.operator("chromm.person_split", text="", icon="SCULPTMODE_HLT").person = pid
            row.operator("chromm.person_delete", text="", icon="X").person = pid
        layout.operator("chromm.refine", icon="FILE_REFRESH")


class VIEW3D_PT_chromm_export(_SidebarPanel, bpy.types.Panel):
    bl_label = "Export & Retarget"
    bl_parent_id = "VIEW3D_PT_chromm_reconstruct"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        layout.operator("chromm.export_people", icon="EXPORT")
        layout.prop(context.scene.chromm, "retarget_target")
        layout.operator("chromm.retarget", icon="ARMATURE_DATA")


CLASSES = (CHROMM_UL_clips, VIEW3D_PT_chromm_reconstruct, VIEW3D_PT_chromm_result,
           VIEW3D_PT_chromm_people, VIEW3D_PT_chromm_export)
