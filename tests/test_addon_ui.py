"""The add-on in real bpy: registration, panels' poll and draw against the real properties and
operators, and a reconstruction driven through the operators against a real local backend
(tiny network) down to the built scene, then export and retarget through their operators."""

import os
import sys
import time

import pytest

from backend_synth import write_clip

pytestmark = pytest.mark.blender

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.dirname(os.path.dirname(sys.executable))


@pytest.fixture(scope="module")
def addon(tmp_path_factory):
    import bpy  # noqa: F401  (first: it puts addon_utils on the path)
    import addon_utils

    link_dir = tmp_path_factory.mktemp("addons")
    os.symlink(ROOT, link_dir / "chromm")
    sys.path.insert(0, str(link_dir))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    module = addon_utils.enable("chromm", default_set=True, handle_error=lambda exc: pytest.fail(repr(exc)))
    yield module
    addon_utils.disable("chromm", default_set=True)
    sys.path.remove(str(link_dir))


def _classes(module):
    return [cls for mod in module.operators.MODULES + module.panels.MODULES for cls in mod.CLASSES]


class RecordingLayout:
    """Stands in for bpy.types.UILayout (which only exists inside a drawn region): every prop,
    operator and list a panel draws must exist on the real data and in bpy.ops."""

    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        def call(*args, **kwargs):
            if name == "prop":
                data, prop = args[0], args[1]
                data = getattr(data, "_data", data)
                assert prop in data.bl_rna.properties, f"{data} has no property {prop!r}"
                self.log.append(f"prop:{prop}")
            elif name == "operator":
                category, op = args[0].split(".")
                assert hasattr(getattr(__import__("bpy").ops, category), op), args[0]
                self.log.append(args[0])
                return _OperatorProps()
            elif name == "template_list":
                assert args[3] in args[2].bl_rna.properties and args[5] in args[4].bl_rna.properties
            elif name == "icon":
                return 0
            self.log.append(name)
            return RecordingLayout(self.log)
        return call


class _OperatorProps:
    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)


class _WithLayout:
    """The real preferences, seen with a recording layout (theirs exists only when drawn)."""

    def __init__(self, data, layout):
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "layout", layout)

    def __getattr__(self, name):
        return getattr(self._data, name)


def _draw(panel_cls, context):
    log = []
    panel_cls.draw(type("P", (), {"layout": RecordingLayout(log)})(), context)
    return log


def test_every_class_registers_and_disabling_twice_leaves_none(addon):
    import bpy
    import addon_utils

    classes = _classes(addon)
    assert len(classes) >= 20 and all(cls.is_registered for cls in classes)
    for _ in range(2):
        addon_utils.disable("chromm", default_set=True)
        assert [cls.__name__ for cls in classes if cls.is_registered] == []
        assert not hasattr(bpy.types.Scene, "chromm")
        assert not hasattr(bpy.types, "VIEW3D_PT_chromm_reconstruct")
        addon_utils.enable("chromm", default_set=True)
        classes = _classes(sys.modules["chromm"])
    assert all(cls.is_registered for cls in classes)


def test_every_option_of_the_schema_reaches_the_service_from_the_addon(addon):
    """Each option is a generated scene property (mapped by job_options / service_options), set
    from the clip list or the preferences, or a developer option."""
    import bpy

    properties = addon.panels.properties
    options = sys.modules["chromm.chromm_addon.options"]
    settings = bpy.context.scene.chromm
    prefs = addon.panels.preferences.CHROMM_AP_preferences
    for leaf in options.leaves(options.ReconstructOptions):
        if leaf.meta["scope"] == options.INPUT or leaf.meta["developer"]:
            continue
        if leaf.key in properties.ELSEWHERE:
            continue
        assert leaf.key in settings.bl_rna.properties, f"the add-on has no property for {leaf.key}"
    assert {"weights_dir", "smplx_model"} <= set(prefs.__annotations__)
    settings.smooth, settings.tracking_gate_m, settings.window = True, 0.55, "FAST"
    body = properties.job_options(settings, [])
    assert body["fuse"]["smooth"] is True and abs(body["fuse"]["tracking"]["gate_m"] - 0.55) < 1e-6
    assert body["window"] == 8 and "device" not in body
    options.from_dict(options.ReconstructOptions, body)  # a valid request body
    settings.smooth, settings.tracking_gate_m, settings.window = False, 0.4, "BEST"


def test_cameras_file_goes_into_the_job_as_a_camera_document(addon, tmp_path):
    import json

    import bpy

    properties = addon.panels.properties
    options = sys.modules["chromm.chromm_addon.options"]
    errors = sys.modules["chromm.chromm_addon.errors"]
    settings = bpy.context.scene.chromm
    doc = {"format": "chromm.cameras", "version": 1,
           "cameras": [{"image_size": [64, 48], "fx": 60, "fy": 60, "cx": 31.5, "cy": 23.5}]}
    (tmp_path / "rig.json").write_text(json.dumps(doc))
    (tmp_path / "bad.json").write_text(json.dumps({"cameras": []}))
    try:
        settings.cameras_file = str(tmp_path / "rig.json")
        body = properties.job_options(settings, [])
        assert body["cameras"]["cameras"] == doc["cameras"]
        assert options.from_dict(options.ReconstructOptions, body).cameras["cameras"] == doc["cameras"]
        settings.cameras_file = str(tmp_path / "bad.json")
        with pytest.raises(errors.ChrommError, match="bad.json: field 'format'"):
            properties.job_options(settings, [])
    finally:
        settings.cameras_file = ""


def test_cameras_typed_in_per_clip_reach_the_job_as_the_camera_document(addon, tmp_path, monkeypatch):
    """Typed-in intrinsics, lens and pose of a clip item -> the job's `cameras` option, the same
    document a file gives; they win over the Cameras file (the operator says so); OpenCV files are
    converted by the backend environment when Blender's Python has no cv2."""
    import importlib
    import json

    import bpy
    import numpy as np
    from scipy.spatial.transform import Rotation

    from test_cameras_io import write_opencv

    properties = addon.panels.properties
    options = sys.modules["chromm.chromm_addon.options"]
    errors = sys.modules["chromm.chromm_addon.errors"]
    cameras = importlib.import_module("chromm.chromm_addon.io.cameras")
    settings = bpy.context.scene.chromm
    prefs = bpy.context.preferences.addons["chromm"].preferences
    settings.clips.clear()
    a, b = settings.clips.add(), settings.clips.add()
    a.name, a.path, b.name, b.path = "cam0.avi", str(tmp_path / "cam0.avi"), "cam1.avi", str(tmp_path / "cam1.avi")
    try:
        assert properties.job_options(settings, [a, b]).get("cameras") is None  # nothing typed, no file
        log = _draw(addon.panels.reconstruct.VIEW3D_PT_chromm_reconstruct, bpy.context)
        assert "prop:show_camera" in log and "prop:fx" not in log  # collapsed by default
        a.use_intrinsics, a.fx, a.fy, a.cx, a.cy, a.image_width, a.image_height = True, 800, 810, 319.5, 239.5, 640, 480
        a.lens, a.k1, a.k2, a.p1 = "PINHOLE", -0.2, 0.05, 0.001
        a.use_pose, a.location, a.rotation = True, (1.0, -2.0, 1.5), (1.2, 0.1, -0.4)
        a.show_camera = True
        log = _draw(addon.panels.reconstruct.VIEW3D_PT_chromm_reconstruct, bpy.context)
        assert all(f"prop:{name}" in log for name in ("fx", "image_height", "k6", "p2", "location", "rotation"))
        body = properties.job_options(settings, [a, b])
        c2w = np.eye(4)
        c2w[:3, :3] = Rotation.from_euler("xyz", (1.2, 0.1, -0.4)).as_matrix()
        c2w[:3, 3] = (1.0, -2.0, 1.5)
        expected = {"format": "chromm.cameras", "version": 1, "units": "m", "source": "cameras typed in",
                    "cameras": [{"clip": "cam0", "fx": 800.0, "fy": 810.0, "cx": 319.5, "cy": 239.5,
                                 "image_size": [640, 480],
                                 "distortion": {"model": "pinhole", "k1": -0.2, "k2": 0.05, "p1": 0.001, "p2": 0.0,
                                                "k3": 0.0, "k4": 0.0, "k5": 0.0, "k6": 0.0}},
                                {"clip": "cam1"}]}
        got = body["cameras"]
        np.testing.assert_allclose(got["cameras"][0].pop("camera_to_world"), c2w, atol=1e-6)  # float32 props
        for key in ("fx", "fy", "cx", "cy", "k1", "k2", "p1"):  # float32 properties
            entry = got["cameras"][0] if key in ("fx", "fy", "cx", "cy") else got["cameras"][0]["distortion"]
            entry[key] = round(entry[key], 5)
        assert got == expected
        known, _ = cameras.match_cameras(options.from_dict(options.ReconstructOptions, body).cameras,
                                         ["cam0", "cam1"], [(640, 480), (640, 480)])
        assert known[1] is None and known[0].model == "pinhole"

        # A file for the same clips: the typed values win, and the operator says so.
        doc = {"format": "chromm.cameras", "version": 1,
               "cameras": [{"image_size": [640, 480], "fx": 500, "fy": 500, "cx": 319.5, "cy": 239.5},
                           {"image_size": [640, 480], "fx": 600, "fy": 600, "cx": 319.5, "cy": 239.5}]}
        (tmp_path / "rig.json").write_text(json.dumps(doc))
        settings.cameras_file = str(tmp_path / "rig.json")
        notes = []
        body = properties.job_options(settings, [a, b], prefs, notes)
        assert [c["fx"] for c in body["cameras"]["cameras"]] == [800.0, 600]
        assert notes == [f"clip 'cam0': the intrinsics typed in replace those of {tmp_path / 'rig.json'}"]
        for path in (a.path, b.path):
            write_clip(path, num_frames=2, fps=12.0)
        prefs.backend_mode, prefs.backend_env = "LOCAL", VENV
        a.fx = 0.0  # a bad typed value: the operator reports the one-line message and cancels
        before = addon.operators.reconstruct.active_job()
        with pytest.raises(RuntimeError, match="cameras typed in: clip 'cam0': fields 'fx', 'fy' must be positive"):
            bpy.ops.chromm.reconstruct()  # (in background mode an ERROR report raises)
        assert addon.operators.reconstruct.active_job() is before

        # An OpenCV file in the Cameras field, with no cv2 in the add-on's Python: converted by the
        # backend environment's readers; without one, the one-line error says how to convert it.
        a.use_intrinsics, a.lens, a.use_pose = False, "NONE", False
        settings.cameras_file = write_opencv(tmp_path / "cam0.yml", size=(640, 480))
        direct = cameras.read_camera_file(settings.cameras_file)
        monkeypatch.setitem(sys.modules, "cv2", None)
        body = properties.job_options(settings, [a], prefs)
        assert body["cameras"] == direct
        prefs.backend_env = ""
        with pytest.raises(errors.ChrommError, match="cam0.yml: reading OpenCV / EasyMocap calibration files needs"):
            properties.job_options(settings, [a], prefs)
    finally:
        settings.cameras_file = ""
        settings.clips.clear()


def test_panels_poll_and_draw_on_the_real_context(addon, tmp_path):
    import bpy

    from chromm_addon.blender.build import build_take
    from take_factory import make_take

    panels = addon.panels.reconstruct
    context = bpy.context
    settings = context.scene.chromm
    assert not panels.VIEW3D_PT_chromm_result.poll(context)
    log = _draw(panels.VIEW3D_PT_chromm_reconstruct, context)
    assert "chromm.reconstruct" in log and "chromm.clip_add" in log
    clip = settings.clips.add()
    clip.name, clip.path = "a.mp4", str(tmp_path / "a.mp4")
    settings.use_range = True
    _draw(panels.VIEW3D_PT_chromm_reconstruct, context)
    settings.last_take = build_take(make_take(T=2, P=1, V=2, N=5), name="take")
    settings.summary = "1 people"
    assert panels.VIEW3D_PT_chromm_result.poll(context)
    log = _draw(panels.VIEW3D_PT_chromm_result, context)
    assert log.count("chromm.look_through") == 2
    assert log.count("chromm.render_overlay") == 3  # the active view, and one per view
    _draw(panels.VIEW3D_PT_chromm_export, context)
    assert panels.VIEW3D_PT_chromm_people.poll(context)
    log = _draw(panels.VIEW3D_PT_chromm_people, context)
    assert all(op in log for op in ("chromm.person_rename", "chromm.person_swap", "chromm.person_merge",
                                    "chromm.person_split", "chromm.person_delete", "chromm.refine"))
    prefs = context.preferences.addons["chromm"].preferences
    for mode in ("LOCAL", "REMOTE"):
        prefs.backend_mode = mode
        log = []
        type(prefs).draw(_WithLayout(prefs, RecordingLayout(log)), context)
        assert "chromm.check_setup" in log
    settings.clips.clear()
    settings.last_take = None


def test_reconstruct_operator_runs_a_job_to_a_scene(addon, tmp_path, monkeypatch):
    import bpy

    from chromm_addon.client.job import APPLIED

    monkeypatch.setenv("CHROMM_BACKEND_ARGS", "--tiny-network")
    reconstruct = addon.operators.reconstruct
    prefs = bpy.context.preferences.addons["chromm"].preferences
    prefs.backend_mode = "LOCAL"
    prefs.backend_env = VENV
    clips = [write_clip(str(tmp_path / f"cam{v}.avi"), num_frames=12, fps=12.0) for v in range(2)]
    assert bpy.ops.chromm.clip_add(directory=str(tmp_path), files=[{"name": "cam0.avi"}, {"name": "cam1.avi"}],
                                   filepath=clips[0]) == {"FINISHED"}
    settings = bpy.context.scene.chromm
    assert [c.name for c in settings.clips] == ["cam0.avi", "cam1.avi"]
    settings.clips[1].offset = 0.25
    settings.fps = 6.0
    settings.device = "cpu"
    assert bpy.ops.chromm.reconstruct() == {"FINISHED"}
    assert not bpy.ops.chromm.reconstruct.poll()  # one job at a time
    job = reconstruct.active_job()
    deadline = time.monotonic() + 180
    while reconstruct.poll_active_job() is not None:  # what the timer does in a UI session
        assert time.monotonic() < deadline, job.snapshot()["error"]
        time.sleep(0.2)
    assert job.snapshot()["state"] == APPLIED, job.snapshot()["error"]
    result = settings.last_take
    cams = [o for o in result.all_objects if o.type == "CAMERA"]
    assert len(cams) == 2 and "2 views" in settings.summary
    assert all(c.data.background_images[0].clip is not None for c in cams)

    # A second run replaces the first when asked, and leaves everything else alone.
    settings.replace_previous = True
    first = result.name
    assert bpy.ops.chromm.reconstruct() == {"FINISHED"}
    while reconstruct.poll_active_job() is not None:
        assert time.monotonic() < deadline + 180
        time.sleep(0.2)
    takes = [c for c in bpy.data.collections
             if c.get("chromm_body") is not None and c.name.startswith("cam0_chromm")]
    assert takes == [settings.last_take] and takes[0].name == first

    assert bpy.ops.chromm.look_through(view=1) == {"FINISHED"}
    assert bpy.context.scene.camera["chromm_view"] == 1
    _shared = addon.chromm_addon.client.local_backend._shared  # the add-on's copy of the module
    assert _shared["backend"] is not None and _shared["backend"].alive()
    addon.operators.reconstruct.unregister_extra()  # what disabling or quitting Blender does
    assert _shared["backend"] is None


def _start_reconstruction(addon, tmp_path, monkeypatch):
    import bpy

    monkeypatch.setenv("CHROMM_BACKEND_ARGS", "--tiny-network")
    prefs = bpy.context.preferences.addons["chromm"].preferences
    prefs.backend_mode, prefs.backend_env = "LOCAL", VENV
    clip = write_clip(str(tmp_path / "solo.avi"), num_frames=12, fps=12.0)
    settings = bpy.context.scene.chromm
    settings.clips.clear()
    assert bpy.ops.chromm.clip_add(directory=str(tmp_path), files=[{"name": "solo.avi"}], filepath=clip) == {"FINISHED"}
    settings.fps, settings.device, settings.replace_previous = 6.0, "cpu", False
    addon.operators.reconstruct.register_extra()  # the load_post handler (a test above unregistered it)
    assert bpy.ops.chromm.reconstruct() == {"FINISHED"}
    return addon.operators.reconstruct.active_job()


def _finish(reconstruct, job):
    deadline = time.monotonic() + 300
    while reconstruct.poll_active_job() is not None:
        assert time.monotonic() < deadline, job.snapshot()
        time.sleep(0.2)
    return job.snapshot()


def test_result_lands_in_its_scene_after_a_rename_and_not_in_a_new_file(addon, tmp_path, monkeypatch):
    """The job keeps no Scene: a renamed scene still gets its result (found by session_uid); after
    File > New while the job runs, the result is not applied anywhere and the panel says where the
    take is, instead of a ReferenceError."""
    import bpy

    from chromm_addon.client.job import APPLIED, FAILED

    reconstruct = addon.operators.reconstruct
    job = _start_reconstruction(addon, tmp_path, monkeypatch)
    scene = bpy.context.scene
    scene.name = "Renamed while running"
    snap = _finish(reconstruct, job)
    assert snap["state"] == APPLIED, snap
    assert bpy.data.scenes["Renamed while running"].chromm.last_take is not None

    job = _start_reconstruction(addon, tmp_path, monkeypatch)
    bpy.ops.wm.read_homefile(use_empty=True)  # File > New while the job runs
    assert "was closed" in reconstruct.last_message()
    snap = _finish(reconstruct, job)
    assert snap["state"] == FAILED and os.path.isfile(snap["take_path"]), snap
    message = reconstruct.last_message()
    assert message.startswith("Reconstruction finished but not added: the file it was started from was closed")
    assert snap["take_path"] in message
    assert all(s.chromm.last_take is None for s in bpy.data.scenes)
    panel = next(c for c in _classes(addon) if c.__name__ == "VIEW3D_PT_chromm_reconstruct")
    assert "label" in _draw(panel, bpy.context)  # the message, drawn in the panel
    reconstruct.unregister_extra()


def test_export_and_retarget_operators(addon, tmp_path):
    import bpy

    from chromm_addon.blender.build import build_take
    from take_factory import make_take

    settings = bpy.context.scene.chromm
    settings.last_take = build_take(make_take(T=3, P=2, V=1, N=5), name="take")
    out = tmp_path / "people.fbx"
    assert bpy.ops.chromm.export_people(filepath=str(out), scope="TAKE", per_person=True,
                                        file_format="FBX", preset="UNITY") == {"FINISHED"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people_person1.fbx", "people_person4.fbx"]
    arms = [o for o in settings.last_take.all_objects if o.type == "ARMATURE"]
    bpy.context.view_layer.objects.active = arms[0]
    settings.retarget_target = arms[1]  # a CHROMM rig has no Rigify/Mixamo names: refused
    with pytest.raises(RuntimeError, match="bones match"):
        bpy.ops.chromm.retarget()


def test_clips_from_sequencer_converts_each_strip_at_its_own_rate(addon, tmp_path):
    import bpy

    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    scene.chromm.clips.clear()
    editor = scene.sequence_editor_create()
    a = editor.strips.new_movie("a25", write_clip(tmp_path / "a25.avi", 60, 25), 1, 1)
    b = editor.strips.new_movie("b30", write_clip(tmp_path / "b30.avi", 60, 30), 2, 26)
    assert a.fps == 25 and a.frame_final_duration == 60  # one clip frame per scene frame
    try:
        assert bpy.ops.chromm.clips_from_sequencer() == {"FINISHED"}
        offsets = {c.name: c.offset for c in scene.chromm.clips}
        # scene frame 26 shows a's 26th frame (index 25): 25 frames at 25 fps = 1.0 s into it
        assert offsets["a25.avi"] == pytest.approx(1.0)
        assert offsets["b30.avi"] == pytest.approx(0.0)
    finally:
        editor.strips.remove(a)
        editor.strips.remove(b)
        scene.chromm.clips.clear()


def test_sync_clips_operator_fills_offsets_from_audio(addon, tmp_path):
    import bpy
    import numpy as np

    from audio_synth import SoundScene
    from backend_synth import quadrant_frame, write_av_clip

    reconstruct = addon.operators.reconstruct
    prefs = bpy.context.preferences.addons["chromm"].preferences
    prefs.backend_mode = "LOCAL"
    prefs.backend_env = VENV
    settings = bpy.context.scene.chromm
    settings.clips.clear()
    scene = SoundScene(5, seed=9, clap_at=2.5)
    for j, (start, rate) in enumerate([(0.0, 48000), (0.4, 44100)]):
        path = write_av_clip(tmp_path / f"s{j}.mp4", [quadrant_frame(32, 24)] * 3, fps=1,
                             audio=scene.recording(start, 4.5, rate, seed=j), audio_rate=rate)
        item = settings.clips.add()
        item.name, item.path = os.path.basename(path), path
    settings.sync = "audio"
    assert bpy.ops.chromm.sync_clips() == {"FINISHED"}
    deadline = time.monotonic() + 120
    while reconstruct.poll_sync_job() is not None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert reconstruct.sync_message().startswith("Synced by audio"), reconstruct.sync_message()
    np.testing.assert_allclose([c.offset for c in settings.clips], [0.4, 0.0], atol=1e-3)
    assert all(c.sync_confidence > 0.25 for c in settings.clips)
    settings.clips.clear()
    settings.sync = "auto"


def test_setup_buttons_check_in_the_background_and_draw_each_fix(addon, tmp_path, smplx_model_path,
                                                                  monkeypatch):
    import pickle

    import bpy
    import numpy as np

    prefs = bpy.context.preferences.addons["chromm"].preferences
    prefs.backend_mode = "LOCAL"
    prefs.backend_env = VENV
    prefs.weights_dir = str(tmp_path / "weights")
    prefs.smplx_model = smplx_model_path
    monkeypatch.setenv("CHROMM_BACKEND_ARGS", "")
    assert bpy.ops.chromm.check_setup() == {"FINISHED"}
    tasks = addon.chromm_addon.client.tasks  # the add-on's copy of the module
    check = tasks.active("check")
    assert not bpy.ops.chromm.check_setup.poll()  # one check at a time
    deadline = time.monotonic() + 120
    while not check.finished:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    findings = check.snapshot()["findings"]
    assert any(f.action == "download_weights" and f.level == "error" for f in findings)
    log = []
    type(prefs).draw(_WithLayout(prefs, RecordingLayout(log)), bpy.context)
    assert "chromm.download_weights" in log and "chromm.install_backend" in log
    assert log.count("chromm.download_weights") >= 2  # the section's button and the fix's

    # Download Weights: each licence must be ticked; online access off (as in the bpy module)
    # is refused with the place to allow it.
    prefs.accept_pi3x = prefs.accept_multihmr = False
    with pytest.raises(RuntimeError, match="tick the licence"):
        bpy.ops.chromm.download_weights()
    prefs.accept_pi3x = True
    assert not bpy.app.online_access
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.chromm.download_weights()
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.chromm.install_backend()
    assert tasks.active("install") is None and tasks.active("download") is None

    # Choose File: a .pkl is converted to .npz without unpickling anything but arrays.
    with np.load(smplx_model_path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    pkl = tmp_path / "SMPLX_NEUTRAL.pkl"
    with open(pkl, "wb") as fh:
        pickle.dump(arrays, fh, protocol=2)
    monkeypatch.setattr(addon.panels.preferences, "user_folder", lambda create=True: str(tmp_path))
    assert bpy.ops.chromm.choose_smplx(filepath=str(pkl)) == {"FINISHED"}
    assert prefs.smplx_model == str(tmp_path / "SMPLX_NEUTRAL.npz")
    assert addon.panels.preferences.smplx_status(prefs.smplx_model) == (
        True, "SMPL-X: 10475 vertices, 55 joints, neutral")
    (tmp_path / "broken.npz").write_text("nope")
    with pytest.raises(RuntimeError, match="not a readable SMPL-X"):
        bpy.ops.chromm.choose_smplx(filepath=str(tmp_path / "broken.npz"))
    assert prefs.smplx_model == str(tmp_path / "SMPLX_NEUTRAL.npz")  # kept the good one

    # A task running in the background shows its stage, bar, Cancel and Open Log; Cancel stops it.
    import threading

    from chromm_addon.client.tasks import CANCELLED, Task

    release = threading.Event()

    def work(t):
        t.update(stage="installing PyTorch (cpu build)", detail="torch: 10 of 200 MB", fraction=0.05)
        while not release.wait(0.05):
            t.check_cancel()
    (tmp_path / "install.log").write_text("")
    running = Task("install", work, log_path=str(tmp_path / "install.log")).start()
    tasks.set_active("install", running)
    while running.snapshot()["fraction"] is None:
        time.sleep(0.01)
    log = []
    type(prefs).draw(_WithLayout(prefs, RecordingLayout(log)), bpy.context)
    assert "progress" in log and "chromm.cancel_task" in log and "chromm.open_log" in log
    assert not bpy.ops.chromm.install_backend.poll()  # one install at a time
    assert bpy.ops.chromm.cancel_task(name="install") == {"FINISHED"}
    running.thread.join(5)
    assert running.snapshot()["state"] == CANCELLED
    tasks.cancel_all()
    prefs.smplx_model = ""
    prefs.weights_dir = ""


def test_people_operators_rename_edit_and_refine(addon, tmp_path):
    import bpy

    from chromm_addon.blender.results import apply_take
    from chromm_addon.evaluation.simulate import simulate_views
    from chromm_addon.evaluation.synthetic import make_scene
    from chromm_addon.fusion.pipeline import fuse_views
    from chromm_addon.io.take import write_take
    from chromm_addon.io.views import write_views

    views = simulate_views(make_scene(num_people=2, num_views=2, num_frames=30, seed=3), "low", seed=3)
    views_path = write_views(tmp_path / "views.npz", views)
    take_path = write_take(tmp_path / "take.npz", fuse_views(views))
    settings = bpy.context.scene.chromm
    settings.last_take, _ = apply_take(bpy.context.scene, str(take_path), "shot", views_path=str(views_path))
    assert bpy.ops.chromm.person_rename(person=0, name="Ana") == {"FINISHED"}
    assert any(o.name == "shot.Ana" for o in settings.last_take.all_objects)
    with pytest.raises(RuntimeError, match="person 7 does not exist"):
        bpy.ops.chromm.person_delete(person=7)
    bpy.context.scene.frame_set(bpy.context.scene.frame_start + 10)
    assert bpy.ops.chromm.person_split(person=1) == {"FINISHED"}
    assert bpy.ops.chromm.person_merge(person=1, other=2) == {"FINISHED"}
    settings.smooth_window_s = 0.6
    assert bpy.ops.chromm.refine() == {"FINISHED"}
    arms = sorted(o.name for o in settings.last_take.all_objects if o.type == "ARMATURE")
    assert arms == ["shot.Ana", "shot.person1"]
    settings.last_take = None


def test_render_overlay_operator(addon, tmp_path):
    import bpy

    from chromm_addon.blender.build import build_take
    from take_factory import standing_take

    settings = bpy.context.scene.chromm
    take = standing_take(T=4, P=1, size=(96, 72))
    take.meta["sources"] = [{"path": write_clip(str(tmp_path / "cam0.avi"), num_frames=8, fps=30.0,
                                                width=96, height=72), "start_time": 0.0}]
    settings.last_take = build_take(take, name="take")
    out = tmp_path / "ov.mp4"
    assert bpy.ops.chromm.render_overlay(view=-1, filepath=str(out)) == {"FINISHED"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam0.avi", "ov.mp4", "ov.png"]
    with pytest.raises(RuntimeError, match="view 3 is out of range"):
        bpy.ops.chromm.render_overlay(view=3, filepath=str(tmp_path / "bad.mp4"))
    os.remove(take.meta["sources"][0]["path"])
    with pytest.raises(RuntimeError, match="cam0.avi: source clip of view 0 not found"):
        bpy.ops.chromm.render_overlay(view=0, filepath=str(tmp_path / "bad.mp4"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ov.mp4", "ov.png"]
    settings.last_take = None
