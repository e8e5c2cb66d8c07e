"""Scene settings of the "Reconstruct from views" panel (saved with the .blend)."""

import bpy


class CHROMM_PG_clip(bpy.types.PropertyGroup):
    """One input clip: a movie file, with its own start offset."""

    # `name` (from PropertyGroup) is the label shown in the list.
    path: bpy.props.StringProperty(name="File", subtype="FILE_PATH")
    enabled: bpy.props.BoolProperty(name="Use", default=True, description="Send this clip")
    offset: bpy.props.FloatProperty(
        name="Offset", unit="TIME_ABSOLUTE", default=0.0, min=0.0,
        description="Time in this clip (seconds) that lines up with the other clips' zero")
    movieclip: bpy.props.PointerProperty(type=bpy.types.MovieClip, name="Movie clip")


class CHROMM_PG_settings(bpy.types.PropertyGroup):
    clips: bpy.props.CollectionProperty(type=CHROMM_PG_clip)
    active_clip: bpy.props.IntProperty(name="Active clip")
    fps: bpy.props.FloatProperty(
        name="Frame rate", default=0.0, min=0.0, max=240.0,
        description="Frames per second of the reconstruction (0: the first clip's rate)")
    use_range: bpy.props.BoolProperty(name="Limit time range", default=False)
    start: bpy.props.FloatProperty(name="Start", unit="TIME_ABSOLUTE", default=0.0, min=0.0)
    end: bpy.props.FloatProperty(name="End", unit="TIME_ABSOLUTE", default=10.0, min=0.0)
    device: bpy.props.EnumProperty(
        name="Device", default="auto",
        items=[("auto", "Auto", "GPU when the backend has one"), ("cuda", "GPU", "CUDA GPU"),
               ("cpu", "CPU", "Slow; for trying things out")])
    quality: bpy.props.EnumProperty(
        name="Quality", default="BALANCED",
        items=[("FAST", "Fast", "Short network windows, for previews"),
               ("BALANCED", "Balanced", "Window size chosen from the GPU's memory"),
               ("BEST", "Best", "The longest windows the GPU fits (slowest)")])
    replace_previous: bpy.props.BoolProperty(
        name="Replace previous result", default=False,
        description="Remove the last reconstruction's collection before adding the new one")
    last_take: bpy.props.PointerProperty(type=bpy.types.Collection, name="Last result")
    summary: bpy.props.StringProperty(name="Summary")
    retarget_target: bpy.props.PointerProperty(
        type=bpy.types.Object, name="Target rig", poll=lambda self, obj: obj.type == "ARMATURE",
        description="A Rigify- or Mixamo-named armature to bake the active person onto")


CLASSES = (CHROMM_PG_clip, CHROMM_PG_settings)


def register_extra():
    bpy.types.Scene.chromm = bpy.props.PointerProperty(type=CHROMM_PG_settings)


def unregister_extra():
    del bpy.types.Scene.chromm
