"""Known cameras through the pipeline: the take's intrinsics are the given (undistorted) ones,
given poses fix the frame (Sim(3) fit checked against a known similarity), `--cameras` on the
command line, and bad input as one line naming the clip."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend_synth import write_image_folder
from test_cameras_io import random_rigid
from chromm_addon.backend.known_cameras import KnownRig, NetworkCamera, apply_to_views
from chromm_addon.geometry.similarity import Sim3
from chromm_addon.io.take import read_take

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W, H = 64, 48
K = [[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]]


def c2w(seed, spacing=2.0):
    return random_rigid(seed, spacing)


@pytest.fixture(scope="module")
def tiny_views(tmp_path_factory):
    """A real views object from the tiny network on three small clips."""
    from chromm_addon.network.runner import NetworkRunner

    from backend_synth import index_frame
    frames = [np.stack([index_frame(i + 3 * v, W, H) for i in range(2)]) for v in range(3)]
    return NetworkRunner.tiny(seed=0).run_window(frames, ["a", "b", "c"], fps=10)


def test_given_poses_fix_the_frame_and_unposed_views_follow_the_same_similarity(tiny_views):
    views = tiny_views
    views.cam_c2w = np.repeat(views.cam_c2w[:, :1], views.num_frames, axis=1)    # static cameras
    truth = Sim3(2.5, Rotation.from_rotvec([0.3, -1.1, 0.4]).as_matrix(), np.array([1.0, -2.0, 0.5]))
    given = [truth.apply_c2w(views.cam_c2w[v, 0]) for v in range(3)]
    rig = KnownRig([NetworkCamera(K=np.array(K), c2w=given[0]), NetworkCamera(c2w=given[1]), None],
                   [None] * 3, [], "test")
    out = apply_to_views(views, rig)
    np.testing.assert_allclose(out.cam_c2w[0], np.repeat(given[0][None], views.num_frames, 0).astype(np.float32))
    np.testing.assert_allclose(out.cam_c2w[2, 0], given[2], atol=1e-4)           # estimated, consistently
    np.testing.assert_allclose(out.points, truth.apply(views.points), atol=1e-4)
    np.testing.assert_allclose(out.det_head_cam, views.det_head_cam * 2.5, rtol=1e-5)
    np.testing.assert_array_equal(out.cam_K[0], np.repeat(np.array(K, np.float32)[None], views.num_frames, 0))
    np.testing.assert_array_equal(out.cam_K[1], views.cam_K[1])
    assert out.meta["known_frame"]["scale"] == pytest.approx(2.5, rel=1e-5)
    assert out.meta["known_cameras"]["poses"] == [True, True, False]


def _clips(tmp_path, n=3):
    return [write_image_folder(tmp_path / f"cam{v}", num_frames=3, width=W, height=H) for v in range(n)]


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "chromm_addon", "reconstruct", *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_reconstruct_with_a_calibrated_rig_keeps_its_frame_lenses_and_intrinsics(tmp_path):
    clips = _clips(tmp_path)
    poses = [c2w(v) for v in range(3)]
    fisheye = {"model": "fisheye", "k1": 0.08, "k2": -0.02}
    in_mm = [p.copy() for p in poses]
    for m in in_mm:     # translations in millimetres, not said: detected
        m[:3, 3] *= 1000.0
    cams = [{"clip": f"cam{v}", "image_size": [2 * W, 2 * H], "fx": 120.5, "fy": 120.5, "cx": 63.5, "cy": 47.5,
             "camera_to_world": in_mm[v].tolist()} for v in range(3)]
    cams[1]["distortion"] = fisheye
    doc = {"format": "chromm.cameras", "version": 1, "cameras": cams}
    path = tmp_path / "rig.json"
    path.write_text(json.dumps(doc))
    take_path = tmp_path / "take.npz"
    done = run_cli(*clips, "-o", str(take_path), "--tiny-network", "--cameras", str(path), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "note:" in done.stdout and "scaled" in done.stdout and "millimetres" in done.stdout
    take = read_take(str(take_path))
    from chromm_addon.backend.undistort import Undistorter

    K_half = np.array([[60.25, 0.0, 31.5], [0.0, 60.25, 23.5], [0.0, 0.0, 1.0]])   # 128x96 calibration halved
    und = Undistorter(K_half, "fisheye", [0.08, -0.02, 0, 0], (W, H))
    for v in range(3):
        expected = und.K if v == 1 else K_half
        np.testing.assert_allclose(take.cam_K[v], np.repeat(expected[None], take.num_frames, 0), atol=1e-4)
        np.testing.assert_allclose(take.cam_c2w[v], np.repeat(poses[v][None], take.num_frames, 0), atol=1e-4)
    meta = take.meta["known_cameras"]
    assert meta["undistorted"] == [False, True, False] and meta["poses"] == [True] * 3
    assert take.meta["source"]["floor"] == "given cameras"
    assert take.meta["source"]["foot_lock"] is False        # it would put soles on z = 0 of the given world
    assert "lens" not in take.meta["sources"][0] and take.meta["sources"][1]["lens"]["model"] == "fisheye"


def test_cameras_for_fewer_clips_is_one_line_naming_the_clip(tmp_path):
    clips = _clips(tmp_path, 2)
    doc = {"format": "chromm.cameras", "version": 1,
           "cameras": [{"image_size": [W, H], "fx": 60, "fy": 60, "cx": 31.5, "cy": 23.5}]}
    path = tmp_path / "one.json"
    path.write_text(json.dumps(doc))
    done = run_cli(*clips, "-o", str(tmp_path / "t.npz"), "--tiny-network", "--cameras", str(path), "--quiet")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "clip 'cam1'" in lines[0]
    assert not (tmp_path / "t.npz").exists()
