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
        if 0 <= settings.active_clip < len(settings.clips):
            clip = settings.clips[settings.active_clip]
            box = layout.box()
            if clip.movieclip is not None:
                box.template_icon(icon_value=layout.icon(clip.movieclip), scale=5.0)
            box.prop(clip, "path", text="")
            box.prop(clip, "offset")

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
            layout.label(text=message, icon="ERROR" if "failed" in message else "INFO")


class VIEW3D_PT_chromm_result(_SidebarPanel, bpy.types.Panel):
    bl_label = "Result"
    bl_parent_id = "VIEW3D_PT_chromm_reconstruct"

    @classmethod
    def poll(cls, context):
        return context.scene.chromm.last_take is not None

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
           VIEW3D_PT_chromm_export)
