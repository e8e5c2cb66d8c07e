"""Names of the custom properties (and attributes) a build writes on Blender data, in one place.

Importable without bpy, so operators, panels and tests name them through these constants.
"""

BUILD_PROP = "chromm_build"               # every data-block of one build: the build's id
BODY_PROP = "chromm_body"                 # a take's top collection: the SMPL-X file, or "approximate"
VIEW_PROP = "chromm_view"                 # a camera: its view index
IMAGE_SIZE_PROP = "chromm_image_size"     # a camera: the view's (width, height)
PIXEL_ASPECT_PROP = "chromm_pixel_aspect"  # a camera: (x, y) pixel aspect
PERSON_PROP = "chromm_person"             # a person's armature and mesh: the person id
COLOUR_PROP = "chromm_colour"             # a person's armature: its sRGB colour
NAME_PROP = "chromm_name"                 # a person's armature: its name (person map)
FRAMES_PROP = "chromm_frames"             # a person's armature: timesteps it is seen
VIEWS_PROP = "chromm_views"               # a person's armature: views that saw it
POINTS_PROP = "chromm_points"             # the scene point cloud object
FRAME_ATTR = "chromm_frame"               # point attribute: timestep of a dynamic point, -1 static
FRAME_START_PROP = "chromm_frame_start"   # the take collection: scene frame of timestep 0
FRAME_TIMES_PROP = "chromm_frame_times"   # the take's frame_times (seconds after timestep 0)
TAKE_PATH_PROP = "chromm_take_path"       # the take collection: the take file it was built from
VIEWS_PATH_PROP = "chromm_views_path"     # the take collection: its views file, when kept
SOURCES_PROP = "chromm_sources"           # JSON list of {"path", "start_time"(, "lens")} per view
