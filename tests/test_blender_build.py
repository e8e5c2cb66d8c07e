"""The scene builder (contract 2) on real bpy, checked against independent references:
the smplx package's forward pass (torch, CPU) for bodies, the take's own arrays for timing,
visibility and points, and the command line as a subprocess."""

import functools
import importlib.util
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from chromm_addon.io.take import write_take
from take_factory import make_take

pytestmark = pytest.mark.blender

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def bpy_fresh():
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy


def _objects(collection, kind=None, prop=None):
    return [o for o in collection.all_objects
            if (kind is None or o.type == kind) and (prop is None or prop in o)]


def _person(collection, pid, kind):
    (obj,) = [o for o in _objects(collection, kind, "chromm_person") if o["chromm_person"] == pid]
    return obj


@functools.lru_cache(maxsize=4)
def _smplx_layer(model_path, flat_hand_mean):
    import smplx
    import torch

    return smplx.SMPLX(model_path, gender="neutral", ext="npz", num_betas=10,
                       num_expression_coeffs=10, use_pca=False, flat_hand_mean=flat_hand_mean,
                       use_face_contour=False, dtype=torch.float64)


def _smplx_reference(model_path, take, p, t):
    """Vertices and joints from the smplx package (torch, CPU), every argument explicit."""
    import torch

    model = _smplx_layer(model_path, take.flat_hand_mean)

    def arg(a):
        return torch.as_tensor(np.asarray(a, dtype=np.float64).reshape(1, -1))

    out = model(betas=arg(take.betas[p]), expression=arg(take.expression[p, t]),
                global_orient=arg(take.global_orient[p, t]), body_pose=arg(take.body_pose[p, t]),
                left_hand_pose=arg(take.left_hand_pose[p, t]),
                right_hand_pose=arg(take.right_hand_pose[p, t]), jaw_pose=arg(take.jaw_pose[p, t]),
                leye_pose=arg(np.zeros(3)), reye_pose=arg(np.zeros(3)), transl=arg(take.transl[p, t]),
                return_verts=True)
    return out.vertices[0].numpy(), out.joints[0, :55].numpy()


def _evaluated_world_vertices(bpy, obj):
    dg = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(dg)
    mesh = ev.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    m = np.array(ev.matrix_world)
    return co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]


@pytest.fixture(scope="module")
def model_without_correctives(tmp_path_factory):
    """A synthetic model with zero pose correctives: the builder's default (correctives off)
    then equals the smplx forward pass exactly."""
    from smplx_synth import make_synthetic_smplx

    path = tmp_path_factory.mktemp("smplx0") / "SMPLX_NEUTRAL.npz"
    return str(make_synthetic_smplx(path, posedirs_scale=0.0))


@pytest.mark.slow
@pytest.mark.parametrize("flat_hand_mean, correctives", [(False, True), (True, False)])
def test_evaluated_mesh_equals_smplx_forward_pass(bpy_fresh, smplx_model_path, model_without_correctives,
                                                  flat_hand_mean, correctives):
    from chromm_addon.blender.build import build_take
    from chromm_addon.body.model_file import load_smplx_model
    from chromm_addon.body.skeleton import JOINT_NAMES

    bpy = bpy_fresh
    path = smplx_model_path if correctives else model_without_correctives
    take = make_take(T=5, P=2, flat_hand_mean=flat_hand_mean, seed=1 + correctives)
    take.betas[1, 2] = 12.5  # beyond Blender's slider range: the builder widens that key
    scene = bpy.context.scene
    scene.frame_start = 3
    col = build_take(take, name="bodies", smplx_model=load_smplx_model(path), pose_correctives=correctives)
    for p, pid in enumerate(take.person_ids):
        mesh_obj = _person(col, int(pid), "MESH")
        arm_obj = _person(col, int(pid), "ARMATURE")
        assert mesh_obj.parent == arm_obj and len(mesh_obj.data.vertices) == 10475
        for t in (0, 2, 4):
            scene.frame_set(scene.frame_start + t)
            ref_v, ref_j = _smplx_reference(path, take, p, t)
            got = _evaluated_world_vertices(bpy, mesh_obj)
            assert np.abs(got - ref_v).max() < 1e-3, (p, t, np.abs(got - ref_v).max())
            m = np.array(arm_obj.matrix_world)
            heads = np.array([m[:3, :3] @ np.array(arm_obj.pose.bones[n].head) + m[:3, 3]
                              for n in JOINT_NAMES])
            np.testing.assert_allclose(heads, ref_j, atol=1e-4)


def test_rest_pose_stands_upright_and_pose_is_keyed_per_timestep(bpy_fresh, smplx_model_path):
    from chromm_addon.blender.build import build_take
    from chromm_addon.body.model_file import load_smplx_model
    from chromm_addon.body.skeleton import JOINT_NAMES

    bpy = bpy_fresh
    model = load_smplx_model(smplx_model_path)
    take = make_take(T=4, P=1)
    col = build_take(take, name="rest", smplx_model=model)
    arm = _person(col, 1, "ARMATURE")
    assert sorted(b.name for b in arm.data.bones) == sorted(JOINT_NAMES)
    head = arm.data.bones["head"].head_local
    pelvis = arm.data.bones["pelvis"].head_local
    ankle = arm.data.bones["left_ankle"].head_local
    assert head.z > pelvis.z > ankle.z  # upright in Z-up
    for bone in arm.data.bones:  # +Z bones, roll 0: bone axes are SMPL-X's axes turned upright
        np.testing.assert_allclose(np.array(bone.matrix_local)[:3, :3],
                                   [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-6)
    action = arm.animation_data.action
    if bpy.app.version >= (4, 4):
        assert arm.animation_data.action_slot is not None
        fcurves = action.layers[0].strips[0].channelbag(arm.animation_data.action_slot).fcurves
    else:
        fcurves = action.fcurves
    quat_curves = [fc for fc in fcurves if fc.data_path.endswith("rotation_quaternion")]
    assert len(quat_curves) == 55 * 4
    assert all(len(fc.keyframe_points) == 4 and fc.keyframe_points[0].interpolation == "LINEAR"
               for fc in quat_curves)
    for b in range(55):  # sign-continuous over time
        q = np.array([[fcurves.find(f'pose.bones["{JOINT_NAMES[b]}"].rotation_quaternion', index=i)
                       .keyframe_points[k].co[1] for i in range(4)] for k in range(4)])
        assert np.all(np.sum(q[1:] * q[:-1], axis=1) >= 0)


@pytest.mark.parametrize("fps, expected", [(29.97, (30, 1.001)), (30000 / 1001, (30, 1.001)),
                                           (23.976, (24, 1.001)), (59.94, (60, 1.001)),
                                           (25.0, (25, 1.0)), (12.5, (13, 13 / 12.5))])
def test_scene_fps_from_take_rate(fps, expected):
    from chromm_addon.blender.build import scene_fps

    whole, base = scene_fps(fps)
    assert whole == expected[0] and base == pytest.approx(expected[1])
    assert whole / base == pytest.approx(fps, rel=1e-4)


def test_fps_and_frame_range_follow_the_take(bpy_fresh):
    from chromm_addon.blender.build import build_take

    bpy = bpy_fresh
    scene = bpy.context.scene
    scene.frame_start = 10
    take = make_take(T=7, P=1, fps=29.97)
    col = build_take(take, name="timing")
    assert (scene.render.fps, scene.render.fps_base) == (30, pytest.approx(1.001))
    assert scene.frame_end == 10 + 7 - 1
    cam = [o for o in _objects(col, "CAMERA") if o["chromm_view"] == 1][0]
    for t in (0, 3, 6):  # timestep t is frame frame_start + t
        scene.frame_set(10 + t)
        np.testing.assert_allclose(np.array(cam.matrix_world), _blender_cam(take.cam_c2w[1, t]), atol=1e-5)


def _blender_cam(c2w):
    m = np.array(c2w, np.float64)
    m[:3, :3] = m[:3, :3] @ np.diag([1.0, -1.0, -1.0])
    return m


def test_invalid_timesteps_hide_the_person(bpy_fresh, smplx_model_path):
    from chromm_addon.blender.build import build_take
    from chromm_addon.body.model_file import load_smplx_model

    bpy = bpy_fresh
    take = make_take(T=6, P=2)
    take.valid[1, [0, 3, 4]] = False
    col = build_take(take, name="valid", smplx_model=load_smplx_model(smplx_model_path))
    scene = bpy.context.scene
    for t in range(6):
        scene.frame_set(scene.frame_start + t)
        for p, pid in enumerate(take.person_ids):
            for kind in ("ARMATURE", "MESH"):
                obj = _person(col, int(pid), kind)
                assert obj.hide_viewport == obj.hide_render == (not take.valid[p, t]), (p, t, kind)


def test_building_twice_leaves_the_first_take_untouched(bpy_fresh, smplx_model_path):
    from chromm_addon.blender.build import build_take, remove_take
    from chromm_addon.body.model_file import load_smplx_model

    bpy = bpy_fresh
    user = bpy.data.objects.new("user cube", bpy.data.meshes.new("user mesh"))
    bpy.context.scene.collection.objects.link(user)
    model = load_smplx_model(smplx_model_path)
    take = make_take(T=3, P=1)
    first = build_take(take, name="take", smplx_model=model)
    first_objects = {o.name: (o.data.name if o.data else None, o.animation_data.action.name
                              if o.animation_data and o.animation_data.action else None)
                     for o in first.all_objects}
    counts = {k: len(getattr(bpy.data, k)) for k in ("objects", "meshes", "armatures", "cameras",
                                                     "actions", "node_groups", "materials", "collections")}
    second = build_take(take, name="take", smplx_model=model)
    assert second != first and second.name != first.name
    assert not set(o.name for o in second.all_objects) & set(first_objects)
    remove_take(second)
    assert {o.name: (o.data.name if o.data else None, o.animation_data.action.name
                     if o.animation_data and o.animation_data.action else None)
            for o in first.all_objects} == first_objects
    assert {k: len(getattr(bpy.data, k)) for k in counts} == counts
    assert "user cube" in bpy.data.objects and "user mesh" in bpy.data.meshes
    remove_take(first)
    assert list(bpy.data.objects) == [user] and list(bpy.data.meshes) == [user.data]
    for kind in ("actions", "node_groups", "cameras", "armatures", "materials", "shape_keys", "collections"):
        assert not len(getattr(bpy.data, kind)), kind


def test_without_model_file_rigid_mannequins(bpy_fresh, caplog):
    from chromm_addon.blender.build import BODY_PROP, build_take
    from chromm_addon.blender.mannequin import mannequin_geometry
    from chromm_addon.blender.people import UPRIGHT
    from chromm_addon.body.skeleton import JOINT_NAMES, approximate_rest_joints

    bpy = bpy_fresh
    take = make_take(T=3, P=2)
    with caplog.at_level(logging.WARNING):
        col = build_take(take, name="nomodel", smplx_model=None)
    assert col[BODY_PROP] == "approximate"
    assert "no SMPL-X model file" in caplog.text
    arms = _objects(col, "ARMATURE", "chromm_person")
    assert sorted(o["chromm_person"] for o in arms) == sorted(take.person_ids.tolist())
    assert all(len(a.data.bones) == 55 for a in arms)
    rest_verts, _, vert_bones = mannequin_geometry(approximate_rest_joints() @ UPRIGHT.T)
    colours = set()
    scene = bpy.context.scene
    for p, pid in enumerate(take.person_ids):
        arm, mesh = _person(col, int(pid), "ARMATURE"), _person(col, int(pid), "MESH")
        assert mesh.parent == arm and mesh.modifiers[0].type == "ARMATURE" and mesh.modifiers[0].object == arm
        colours.add(tuple(mesh.data.materials[0].diffuse_color))
        # Rigid: every vertex is in exactly one bone's group, with weight 1.
        for v in list(mesh.data.vertices)[::97]:
            assert len(v.groups) == 1 and v.groups[0].weight == 1.0
            assert mesh.vertex_groups[v.groups[0].group].name == JOINT_NAMES[vert_bones[v.index]]
        # Posed: each vertex moves with its bone's world matrix (the rest geometry carried rigidly).
        scene.frame_set(scene.frame_start + 1)
        deps = bpy.context.evaluated_depsgraph_get()
        evaluated = mesh.evaluated_get(deps).data
        got = np.empty(len(evaluated.vertices) * 3, np.float32)
        evaluated.vertices.foreach_get("co", got)
        got = got.reshape(-1, 3) @ np.array(mesh.matrix_world)[:3, :3].T + np.array(mesh.matrix_world)[:3, 3]
        for bone in (0, 4, 18, 15):
            pb = arm.pose.bones[JOINT_NAMES[bone]]
            m = (np.array(arm.matrix_world) @ np.array(pb.matrix)
                 @ np.linalg.inv(np.array(pb.bone.matrix_local)))
            sel = vert_bones == bone
            want = rest_verts[sel] @ m[:3, :3].T + m[:3, 3]
            np.testing.assert_allclose(got[sel], want, atol=1e-4)
    assert len(colours) == take.num_people


def test_point_cloud_counts_colours_and_dynamic_points(bpy_fresh):
    from chromm_addon.blender.build import build_take

    bpy = bpy_fresh
    take = make_take(T=5, P=0, N=400)
    scene = bpy.context.scene
    scene.frame_start = 2
    col = build_take(take, name="pts")
    (obj,) = [o for o in col.all_objects if "chromm_points" in o]
    assert obj["chromm_points"] == 400
    static = int(np.sum(take.point_frames < 0))
    for t in range(5):
        scene.frame_set(scene.frame_start + t)
        geometry = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
        cloud = geometry.pointcloud
        expected = take.point_frames == t
        assert len(cloud.points) == static + int(expected.sum()), t
        pos = np.empty(len(cloud.points) * 3, np.float32)
        cloud.attributes["position"].data.foreach_get("vector", pos)
        keep = (take.point_frames < 0) | expected
        np.testing.assert_allclose(pos.reshape(-1, 3), take.points[keep], atol=1e-6)
        col_attr = np.empty(len(cloud.points) * 4, np.float32)
        cloud.attributes["Col"].data.foreach_get("color_srgb", col_attr)
        np.testing.assert_allclose(col_attr.reshape(-1, 4)[:, :3] * 255, take.colors[keep], atol=0.51)
    assert obj.material_slots[0].material is not None


def test_failed_save_leaves_no_file_and_no_objects(bpy_fresh, tmp_path, smplx_model_path):
    from chromm_addon.blender.build import build_take_file
    from chromm_addon.errors import ChrommError

    bpy = bpy_fresh
    take_path = tmp_path / "ok.npz"
    write_take(take_path, make_take(T=2, P=1))
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(ChrommError, match="afile"):
        build_take_file(take_path, tmp_path / "afile" / "out.blend", smplx_path=smplx_model_path)
    assert not bpy.data.objects and not bpy.data.actions and not bpy.data.meshes
    assert sorted(os.listdir(tmp_path)) == ["afile", "ok.npz"]


def _run_cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "CHROMM_SMPLX_MODEL"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "chromm_addon", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_cli_build_end_to_end(bpy_fresh, tmp_path, smplx_model_path):
    bpy = bpy_fresh
    take = make_take(T=3, P=2)
    take_path = tmp_path / "my take.npz"
    write_take(take_path, take)
    out = tmp_path / "out" / "scene.blend"
    proc = _run_cli("build", take_path, "-o", out, "--smplx", smplx_model_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out.parent)) == ["scene.blend"]
    bpy.ops.wm.open_mainfile(filepath=str(out))
    col = bpy.data.collections["my take"]
    assert len(_objects(col, "CAMERA", "chromm_view")) == 2
    assert len(_objects(col, "MESH", "chromm_person")) == 2
    assert len(_objects(col, "ARMATURE", "chromm_person")) == 2
    scene = bpy.context.scene  # the saved file plays: keys and slots survive saving and loading
    assert (scene.frame_start, scene.frame_end, scene.render.fps) == (1, 3, 30)
    cam = [o for o in _objects(col, "CAMERA") if o["chromm_view"] == 0][0]
    scene.frame_set(scene.frame_start + 2)
    np.testing.assert_allclose(np.array(cam.matrix_world), _blender_cam(take.cam_c2w[0, 2]), atol=1e-5)
    # Ready for F12: view 0 is the active camera at its resolution, with a world and a light.
    assert scene.camera == cam and scene.render.resolution_x == int(take.image_size[0, 0])
    assert scene.world is not None and any(o.type == "LIGHT" for o in scene.objects)
    # Without a model file: mannequins, and the command says so.
    out2 = tmp_path / "bare.blend"
    proc = _run_cli("build", take_path, "-o", out2)
    assert proc.returncode == 0 and "no SMPL-X model file" in proc.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out2))
    bodies = _objects(bpy.data.collections["my take"], "MESH", "chromm_person")
    assert len(bodies) == 2 and all(b.parent.type == "ARMATURE" for b in bodies)


def _bad_takes(tmp_path):
    good = make_take(T=2, P=1)
    write_take(tmp_path / "good.npz", good)
    with np.load(tmp_path / "good.npz") as data:
        arrays = dict(data)
    missing = {k: v for k, v in arrays.items() if k != "transl"}
    np.savez(tmp_path / "missing.npz", **missing)
    nan = dict(arrays)
    nan["points"] = nan["points"].copy()
    nan["points"][3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", **nan)
    (tmp_path / "text.npz").write_text("this is not a zip file\n")
    return [("missing.npz", "transl"), ("nan.npz", "points"), ("text.npz", "text.npz")]


@pytest.mark.slow
def test_cli_bad_takes_exit_2_with_one_line_and_no_blend(tmp_path, smplx_model_path):
    cases = _bad_takes(tmp_path)
    for name, words in cases + [("absent.npz", "absent.npz")]:
        out = tmp_path / "out" / f"{name}.blend"
        proc = _run_cli("build", tmp_path / name, "-o", out, "--smplx", smplx_model_path)
        assert proc.returncode == 2, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (name, lines)
        assert not out.parent.exists() or not os.listdir(out.parent), name
    # A bad model file is the same kind of error.
    proc = _run_cli("build", tmp_path / "good.npz", "-o", tmp_path / "m.blend", "--smplx", tmp_path / "text.npz")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and not (tmp_path / "m.blend").exists()


def _load_extension(name="chromm_ext_under_test"):
    """The repository root as a package (it is the extension), whatever the folder is called."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "__init__.py"),
                                                  submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
        raise
    return module


def test_import_operator_builds_reports_and_cancels(bpy_fresh, tmp_path, smplx_model_path):
    bpy = bpy_fresh
    ext = _load_extension()
    ext.register()
    try:
        take_path = tmp_path / "op take.npz"
        take = make_take(T=3, P=1, V=3)
        take.image_size[2] = [480, 720]
        write_take(take_path, take)
        assert bpy.ops.import_scene.chromm_take(filepath=str(take_path), smplx_model=smplx_model_path) == {"FINISHED"}
        col = bpy.data.collections["op take"]
        assert len(_objects(col, "MESH", "chromm_person")) == 1
        (bad,) = [n for n, _ in _bad_takes(tmp_path)][:1]
        before = len(bpy.data.objects)
        with pytest.raises(RuntimeError, match="transl"):  # bpy turns an ERROR report into this
            bpy.ops.import_scene.chromm_take(filepath=str(tmp_path / bad))
        assert len(bpy.data.objects) == before
        cam = [o for o in _objects(col, "CAMERA") if o["chromm_view"] == 2][0]
        bpy.context.view_layer.objects.active = cam
        assert bpy.ops.chromm.set_view_resolution() == {"FINISHED"}
        render = bpy.context.scene.render
        assert (render.resolution_x, render.resolution_y, render.resolution_percentage) == (480, 720, 100)
        menu_funcs = [f.__name__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()]
        assert "menu_func_import" in menu_funcs
    finally:
        ext.unregister()
    assert not hasattr(bpy.types, "IMPORT_SCENE_OT_chromm_take")


def test_smallest_take_builds(bpy_fresh, smplx_model_path):
    from chromm_addon.blender.build import build_take
    from chromm_addon.body.model_file import load_smplx_model

    bpy = bpy_fresh
    take = make_take(T=1, P=1, V=1, N=0)
    col = build_take(take, name="tiny", smplx_model=load_smplx_model(smplx_model_path))
    assert bpy.context.scene.frame_end == bpy.context.scene.frame_start
    assert [o for o in col.all_objects if "chromm_points" in o][0]["chromm_points"] == 0
    assert len(_objects(col, "MESH", "chromm_person")) == 1


def test_take_needing_more_components_than_the_model_is_refused(bpy_fresh, smplx_model_path):
    from chromm_addon.blender.build import build_take
    from chromm_addon.body.model_file import load_smplx_model
    from chromm_addon.errors import ChrommError

    bpy = bpy_fresh
    take = make_take(T=2, P=1)
    take.betas = np.zeros((1, 16), np.float32)
    take.meta["smplx"]["num_betas"] = 16
    with pytest.raises(ChrommError, match=r"SMPLX_NEUTRAL\.npz: the take needs 16 shape components"):
        build_take(take, smplx_model=load_smplx_model(smplx_model_path))
    assert not bpy.data.objects and not bpy.data.collections
