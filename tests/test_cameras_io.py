"""Known cameras: our JSON, OpenCV FileStorage (written by cv2 itself), EasyMocap intri/extri.yml,
matching to clips, and one clear line for each kind of bad input."""
import json

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from chromm_addon.errors import ChrommError
from chromm_addon.io.cameras import document_from_cameras, match_cameras, read_camera_file, read_camera_files

K = np.array([[1000.0, 0.0, 959.5], [0.0, 1005.0, 539.5], [0.0, 0.0, 1.0]])
DIST5 = np.array([-0.2, 0.05, 0.001, -0.002, 0.01])


def random_rigid(seed, spacing=1.0):
    """A random rotation and a translation of about `spacing` (4x4)."""
    rng = np.random.default_rng(seed)
    m = np.eye(4)
    m[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    m[:3, 3] = rng.normal(size=3) * spacing
    return m


def write_opencv(path, K=K, dist=DIST5, size=(1920, 1080), model=None, rvec=None, tvec=None):
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", size[0])
    fs.write("image_height", size[1])
    fs.write("camera_matrix", K)
    if dist is not None:
        fs.write("distortion_coefficients", np.asarray(dist, dtype=np.float64).reshape(1, -1))
    if model:
        fs.write("distortion_model", model)
    if rvec is not None:
        fs.write("rvec", rvec)
        fs.write("tvec", tvec)
    fs.release()
    return str(path)


def write_easymocap(folder, names, poses, size=None):
    fs = cv2.FileStorage(str(folder / "intri.yml"), cv2.FILE_STORAGE_WRITE)
    fs.startWriteStruct("names", cv2.FileNode_SEQ)
    for n in names:
        fs.write("", n)
    fs.endWriteStruct()
    for n in names:
        fs.write(f"K_{n}", K)
        fs.write(f"dist_{n}", DIST5.reshape(1, 5))
        if size:
            fs.write(f"H_{n}", size[1])
            fs.write(f"W_{n}", size[0])
    fs.release()
    fs = cv2.FileStorage(str(folder / "extri.yml"), cv2.FILE_STORAGE_WRITE)
    fs.startWriteStruct("names", cv2.FileNode_SEQ)
    for n in names:
        fs.write("", n)
    fs.endWriteStruct()
    for n, m in zip(names, poses):
        fs.write(f"R_{n}", cv2.Rodrigues(m[:3, :3])[0])
        fs.write(f"Rot_{n}", m[:3, :3])
        fs.write(f"T_{n}", m[:3, 3].reshape(3, 1))
    fs.release()
    return str(folder / "intri.yml")


@pytest.mark.parametrize("ext", [".yml", ".xml", ".json"])
def test_opencv_filestorage_single_camera_with_extrinsics(tmp_path, ext):
    pose = random_rigid(0, spacing=2.0)
    rvec = cv2.Rodrigues(pose[:3, :3])[0]
    path = write_opencv(tmp_path / f"cam{ext}", rvec=rvec, tvec=pose[:3, 3].reshape(3, 1))
    doc = read_camera_file(path)
    (cam,), notes = match_cameras(doc, ["front"], [(1920, 1080)])
    assert notes == []
    np.testing.assert_allclose(cam.K, K)
    assert cam.model == "pinhole"
    np.testing.assert_allclose(cam.dist, list(DIST5) + [0, 0, 0])
    np.testing.assert_allclose(cam.c2w, np.linalg.inv(pose), atol=1e-9)


def test_calibration_at_another_resolution_is_scaled_and_said(tmp_path):
    path = write_opencv(tmp_path / "cam.yml", dist=None)
    (cam,), notes = match_cameras(read_camera_file(path), ["front"], [(960, 540)])
    # the scaled camera projects a point where the original does, halved in pixel-edge units
    X = np.array([0.3, -0.2, 4.0])
    big = K @ X / X[2]
    small = cam.K @ X / X[2]
    np.testing.assert_allclose((small[:2] + 0.5), (big[:2] + 0.5) / 2, atol=1e-9)
    assert len(notes) == 1 and "front" in notes[0] and "1920x1080" in notes[0] and "scaled" in notes[0]
    with pytest.raises(ChrommError, match=r"clip 'front'.*'image_size' 1920x1080 has another aspect ratio"):
        match_cameras(read_camera_file(path), ["front"], [(1080, 1080)])


def test_four_coefficients_need_a_named_model(tmp_path):
    path = write_opencv(tmp_path / "cam.yml", dist=[0.1, 0.01, 0.0, 0.0])
    with pytest.raises(ChrommError, match=r"cam.yml: field 'distortion_coefficients': 4 distortion coefficients "
                                          r"without a named model"):
        read_camera_file(path)
    path = write_opencv(tmp_path / "fish.yml", dist=[0.1, 0.01, 0.002, 0.0], model="fisheye")
    (cam,), _ = match_cameras(read_camera_file(path), ["gopro"], [(1920, 1080)])
    assert cam.model == "fisheye" and cam.dist.tolist() == [0.1, 0.01, 0.002, 0.0]


def test_easymocap_rig_reads_intrinsics_and_world_to_camera(tmp_path):
    names = ["01", "02", "03", "04"]
    poses = [random_rigid(i, spacing=3.0) for i in range(4)]
    path = write_easymocap(tmp_path, names, poses)
    doc = read_camera_file(path)
    cams, notes = match_cameras(doc, names, [(1920, 1080)] * 4)
    assert len(notes) == 4 and "states no image size" in notes[0]
    for cam, pose in zip(cams, poses):
        np.testing.assert_allclose(cam.K, K)
        np.testing.assert_allclose(cam.c2w @ pose, np.eye(4), atol=1e-9)
        assert cam.model == "pinhole"
    # reading extri.yml finds intri.yml beside it
    assert read_camera_file(str(tmp_path / "extri.yml"))["cameras"] == doc["cameras"]


def test_our_json_round_trip_and_clip_order(tmp_path):
    names = ["a", "b"]
    poses = [np.linalg.inv(random_rigid(i)) for i in range(2)]
    doc = {"format": "chromm.cameras", "version": 1, "cameras": [
        {"image_size": [640, 480], "fx": 500, "fy": 500, "cx": 319.5, "cy": 239.5,
         "distortion": {"model": "fisheye", "k1": 0.05, "k2": -0.01}, "camera_to_world": poses[0].tolist()},
        {"camera_to_world": poses[1].tolist()},
    ]}
    path = tmp_path / "cams.json"
    path.write_text(json.dumps(doc))
    cams, notes = match_cameras(read_camera_file(str(path)), names, [(640, 480)] * 2)
    assert notes == [] and cams[0].model == "fisheye" and cams[1].K is None
    np.testing.assert_allclose(cams[0].dist, [0.05, -0.01, 0, 0])
    again, _ = match_cameras(document_from_cameras(cams, [(640, 480)] * 2), names, [(640, 480)] * 2)
    for x, y in zip(cams, again):
        for field in ("K", "dist", "c2w"):
            a, b = getattr(x, field), getattr(y, field)
            assert (a is None and b is None) or np.allclose(a, b)


def _doc(*entries, **extra):
    return {"format": "chromm.cameras", "version": 1, "cameras": list(entries), **extra}


def test_bad_input_one_clear_line_naming_clip_and_field():
    good = {"clip": "a", "image_size": [640, 480], "fx": 500, "fy": 500, "cx": 320, "cy": 240}
    sizes = [(640, 480), (640, 480)]
    with pytest.raises(ChrommError, match=r"clip 'b': no camera given \(1 cameras for 2 clips\)"):
        match_cameras(_doc(good), ["a", "b"], sizes)
    reflect = np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(ChrommError, match=r"clip 'a': field 'camera_to_world' rotation is not a rotation: a reflection"):
        match_cameras(_doc(dict(good, camera_to_world=reflect.tolist())), ["a"], sizes[:1])
    scaled = np.diag([2.0, 2.0, 2.0, 1.0])
    with pytest.raises(ChrommError, match=r"clip 'a': field 'world_to_camera' rotation is not a rotation: not orthonormal"):
        match_cameras(_doc(dict(good, world_to_camera=scaled.tolist())), ["a"], sizes[:1])
    with pytest.raises(ChrommError, match=r"clip 'a': field 'distortion.model' is None; name it"):
        match_cameras(_doc(dict(good, distortion={"k1": 0.1})), ["a"], sizes[:1])
    with pytest.raises(ChrommError, match=r"clip 'a': field 'image_size' is missing"):
        match_cameras(_doc({k: v for k, v in good.items() if k != "image_size"}), ["a"], sizes[:1])
    with pytest.raises(ChrommError, match=r"clip 'a': field 'cy' is missing"):
        match_cameras(_doc({k: v for k, v in good.items() if k != "cy"}), ["a"], sizes[:1])
    with pytest.raises(ChrommError, match=r"camera 'c' names no clip"):
        match_cameras(_doc(good, dict(good, clip="c")), ["a", "b"], sizes)


def test_poses_in_millimetres_are_detected_and_said():
    c2w = [np.linalg.inv(random_rigid(i, spacing=2000.0)) for i in range(3)]
    entries = [{"clip": n, "camera_to_world": m.tolist()} for n, m in zip("abc", c2w)]
    cams, notes = match_cameras(_doc(*entries), list("abc"), [(64, 48)] * 3)
    assert len(notes) == 1 and "millimetres" in notes[0]
    np.testing.assert_allclose(cams[1].c2w[:3, 3], c2w[1][:3, 3] / 1000)
    np.testing.assert_allclose(cams[1].c2w[:3, :3], c2w[1][:3, :3])
    # stated units are used as stated, without a note
    cams, notes = match_cameras(_doc(*entries, units="mm"), list("abc"), [(64, 48)] * 3)
    assert notes == [] and np.allclose(cams[2].c2w[:3, 3], c2w[2][:3, 3] / 1000)


def test_several_opencv_files_one_per_clip(tmp_path):
    a = write_opencv(tmp_path / "a.yml")
    b = write_opencv(tmp_path / "b.yml", dist=[0.1, 0.0, 0.0, 0.0], model="fisheye")
    cams, _ = match_cameras(read_camera_files([a, b]), ["left", "right"], [(1920, 1080)] * 2)
    assert [c.model for c in cams] == ["pinhole", "fisheye"]


def test_cameras_command_converts_to_our_document(tmp_path, capsys):
    from chromm_addon.cli import main

    path = write_easymocap(tmp_path, ["01", "02"], [random_rigid(0), random_rigid(1)], size=(1920, 1080))
    out = tmp_path / "rig.json"
    assert main(["cameras", path, "-o", str(out)]) == 0
    assert "camera 1 '02', fx 1000.00" in capsys.readouterr().out
    cams, notes = match_cameras(read_camera_file(str(out)), ["01", "02"], [(1920, 1080)] * 2)
    original, _ = match_cameras(read_camera_file(path), ["01", "02"], [(1920, 1080)] * 2)
    assert notes == []
    for a, b in zip(cams, original):
        np.testing.assert_allclose(a.K, b.K)
        np.testing.assert_allclose(a.dist, b.dist)
        np.testing.assert_allclose(a.c2w, b.c2w)


def test_typed_in_cameras_become_the_same_document_and_win_over_a_file():
    from chromm_addon.io.cameras import typed_entry, with_typed

    angles = np.array([0.3, -1.1, 2.0])
    entry = typed_entry("a", dict(fx=1000, fy=1005, cx=959.5, cy=539.5, width=1920, height=1080),
                        dict(model="fisheye", k1=0.05, k2=-0.01), dict(location=(1, 2, 3), rotation=angles))
    assert entry["distortion"] == {"model": "fisheye", "k1": 0.05, "k2": -0.01, "k3": 0.0, "k4": 0.0}
    # Blender's XYZ Euler is extrinsic x, then y, then z (scipy's lower-case "xyz").
    np.testing.assert_allclose(np.array(entry["camera_to_world"])[:3, :3],
                               Rotation.from_euler("xyz", angles).as_matrix(), atol=1e-12)
    assert typed_entry("b") is None
    doc, notes = with_typed(None, [entry, None], ["a", "b"])
    known, _ = match_cameras(doc, ["a", "b"], [(960, 540), (640, 480)])
    assert known[1] is None and known[0].model == "fisheye"
    np.testing.assert_allclose(known[0].K[0], [500.0, 0.0, 479.5])   # scaled like a file's: (c + .5) s - .5
    np.testing.assert_allclose(known[0].c2w[:3, 3], [1, 2, 3])

    # A file (in millimetres, clip order) and a typed-in lens for clip 'b': the lens replaces the
    # file's, the file's intrinsics and pose stay (in metres now), and a note says so.
    filed = _doc({"image_size": [640, 480], "fx": 500, "fy": 500, "cx": 319.5, "cy": 239.5},
                 {"image_size": [640, 480], "fx": 400, "fy": 400, "cx": 319.5, "cy": 239.5,
                  "distortion": {"model": "pinhole", "k1": -0.3},
                  "camera_to_world": random_rigid(1, 1000.0).tolist()}, units="mm", source="rig.json")
    lens = typed_entry("b", lens=dict(model="pinhole", k1=-0.1, p1=0.002))
    doc, notes = with_typed(filed, [None, lens], ["a", "b"])
    assert notes == ["clip 'b': the lens typed in replace those of rig.json"]
    known, _ = match_cameras(doc, ["a", "b"], [(640, 480)] * 2)
    assert known[1].K[0, 0] == 400 and known[1].dist[[0, 2]].tolist() == [-0.1, 0.002]
    np.testing.assert_allclose(known[1].c2w[:3, 3], random_rigid(1, 1000.0)[:3, 3] / 1000)
    # Typed in for a clip the file lacks: not an error; a clip with neither still is.
    doc, _ = with_typed(filed, [None, None, lens], ["a", "b", "c"])
    assert doc["cameras"][2]["distortion"]["k1"] == -0.1
    with pytest.raises(ChrommError, match="rig.json: clip 'd': no camera given"):
        with_typed(filed, [None, None, lens, None], ["a", "b", "c", "d"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(intrinsics=dict(fx=0, fy=1, cx=1, cy=1, width=4, height=3)), "clip 'a': fields 'fx', 'fy' must be positive"),
    (dict(intrinsics=dict(fx=1, fy=1, cx=1, cy=1, width=0, height=3)), "clip 'a': field 'image_size'"),
    (dict(lens=dict(model="brown")), "clip 'a': field 'distortion.model'"),
])
def test_typed_in_bad_values_one_line_naming_clip_and_field(kwargs, message):
    from chromm_addon.io.cameras import typed_entry

    with pytest.raises(ChrommError, match=f"^cameras typed in: {message}"):
        typed_entry("a", **kwargs)
