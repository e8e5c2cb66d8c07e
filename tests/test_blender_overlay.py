"""Overlay render: the take's people over a view's source clip. Checked on the decoded output video
(OpenCV): body pixels on the take's joints projected with cv2.projectPoints, the right clip frame
behind every output frame (frame-accurate with the clip's start time), the footage showing
through elsewhere; bad input ends with one line and leaves no file."""

import os

import numpy as np
import pytest

from chromm_addon.io.take import write_take
from take_factory import standing_take

pytestmark = pytest.mark.blender

SIZE = (320, 240)
FPS = 30.0


def _level(i):
    return 20 + 9 * i  # clip frame i is a flat grey of this level: the frame index is readable


def _write_clip(path, frames=24):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for i in range(frames):
        writer.write(np.full((SIZE[1], SIZE[0], 3), _level(i), np.uint8))
    writer.release()
    return str(path)


def _read_video(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.array(frames)


def _projected_joints(take, t, model=None):
    import cv2

    from chromm_addon.backend.demo_network import take_joints

    joints = take_joints(take, model)[:, t, :22]
    w2c = np.linalg.inv(take.cam_c2w[0, t].astype(np.float64))
    rvec, _ = cv2.Rodrigues(w2c[:3, :3])
    pixels, _ = cv2.projectPoints(joints.reshape(-1, 1, 3), rvec, w2c[:3, 3],
                                  take.cam_K[0, t].astype(np.float64), None)
    return pixels.reshape(-1, 2)


@pytest.fixture
def take_with_clip(tmp_path):
    take = standing_take(T=10, P=2, size=SIZE, fps=FPS)
    take.transl[1, :, 0] += np.linspace(0, 0.6, 10)  # the second person walks to the side
    start_time = 0.1  # timestep 0 is clip frame 3
    take.meta["sources"] = [{"path": _write_clip(tmp_path / "cam0.avi"), "start_time": start_time}]
    path = tmp_path / "take.npz"
    write_take(path, take)
    return take, path


@pytest.mark.parametrize("body,engine", [("mannequin", "auto"),
                                         pytest.param("smplx", "cycles", marks=pytest.mark.slow)])
def test_overlay_bodies_on_the_joints_over_the_right_clip_frames(tmp_path, take_with_clip, capsys,
                                                                 smplx_model_path, body, engine):
    from chromm_addon.body.model_file import load_smplx_model
    from chromm_addon.cli import main

    take, take_path = take_with_clip
    out = tmp_path / "out" / "overlay.mp4"
    model = load_smplx_model(smplx_model_path) if body == "smplx" else None
    extra = ["--smplx", smplx_model_path] if model else []
    assert main(["render", str(take_path), "--view", "0", "-o", str(out), "--frames", "2:7",
                 "--engine", engine, *extra]) == 0
    assert sorted(os.listdir(out.parent)) == ["overlay.mp4", "overlay.png"]
    video = _read_video(out)
    assert video.shape == (5, SIZE[1], SIZE[0], 3)
    yy, xx = np.mgrid[:SIZE[1], :SIZE[0]]
    for i, frame in enumerate(video):
        t = 2 + i
        background = _level(3 + t)  # clip frame of timestep t: start_time * fps + t
        body = np.abs(frame.astype(int) - background).sum(-1) > 30
        joints = _projected_joints(take, t, model)
        # Every body joint of both people lies on (within 2 px of) drawn body pixels.
        by, bx = np.nonzero(body)
        for x, y in joints:
            assert np.min(np.hypot(bx - x, by - y)) <= 2.0, (i, x, y)
        # Far from every joint (and the name labels above the heads) the source frame shows through.
        far = np.min(np.hypot(xx[..., None] - joints[:, 0], yy[..., None] - joints[:, 1]), -1) > 60
        assert far.sum() > 0.3 * far.size
        assert abs(np.median(frame[far]) - background) <= 3, (i, np.median(frame[far]), background)
        assert body[far].mean() < 0.01
    still = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out.with_suffix(".png")))
    assert abs(np.median(still[..., :3]) - _level(3 + 2 + 5 // 2)) <= 3  # the middle frame
    assert "5 frames" in capsys.readouterr().out


def test_overlay_bad_input_one_line_and_no_file(tmp_path, take_with_clip, capsys):
    from chromm_addon.cli import main

    take, take_path = take_with_clip
    out = tmp_path / "o" / "x.mp4"
    cases = [(["--view", "1"], "view 1 is out of range"),
             (["--frames", "8:12"], "A:B needs 0 <= A < B <= 10")]
    missing = tmp_path / "moved.npz"
    take.meta["sources"] = [{"path": str(tmp_path / "gone.mp4"), "start_time": 0.0}]
    write_take(missing, take)
    (tmp_path / "afile").write_text("a file, not a folder")
    for extra, message in cases:
        assert main(["render", str(take_path), "-o", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert main(["render", str(missing), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gone.mp4: source clip of view 0 not found" in err[0]
    assert main(["render", str(take_path), "-o", str(tmp_path / "afile" / "x.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "cannot write there" in err[-1]
    assert not out.parent.exists()
    assert sorted(os.listdir(tmp_path)) == ["afile", "cam0.avi", "moved.npz", "take.npz"]


def test_cancelled_overlay_leaves_nothing(tmp_path, take_with_clip):
    import bpy

    from chromm_addon.blender.build import build_take
    from chromm_addon.blender.overlay import render_overlay

    take, _ = take_with_clip
    bpy.ops.wm.read_factory_settings(use_empty=True)
    collection = build_take(take, name="take")
    scenes = len(bpy.data.scenes)
    seen = []

    def cancel():
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_overlay(collection, 0, tmp_path / "c.mp4", tmp_path / "c.png",
                       progress=lambda done, total: seen.append((done, total)), cancel=cancel)
    assert seen == [(1, 10), (2, 10)]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(("c.", ".chromm-"))]
    assert len(bpy.data.scenes) == scenes and bpy.context.scene.render.film_transparent is False


def test_overlay_undistorts_a_clip_recorded_through_a_lens(tmp_path, capsys, monkeypatch):
    """A take whose clip was undistorted before the network (source `lens`): the recorded body
    (blue discs at the joints projected through the lens by cv2.projectPoints) lines up with the
    take's pinhole projection near the image edges once the frames are undistorted, and not as
    recorded."""
    import cv2

    from chromm_addon.backend.demo_network import take_joints
    from chromm_addon.blender.overlay import source_lens
    from chromm_addon.cli import main

    T = 2
    take = standing_take(T=T, P=2, size=SIZE, fps=FPS)
    take.person_ids[:] = [1, 4]  # yellow and red: little blue of their own
    take.transl[:, :, 0] = [[-1.3], [1.3]]  # arms out towards the left and right edges
    K = take.cam_K[0, 0].astype(np.float64)
    dist = np.array([-0.35, 0.0, 0.0, 0.0, 0.0])
    joints = take_joints(take, None)[:, :, :22]
    w2c = np.linalg.inv(take.cam_c2w[0, 0].astype(np.float64))
    rvec = cv2.Rodrigues(w2c[:3, :3])[0]
    writer = cv2.VideoWriter(str(tmp_path / "lens.avi"), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for t in range(T):
        frame = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        recorded, _ = cv2.projectPoints(joints[:, t].reshape(-1, 1, 3), rvec, w2c[:3, 3], K, dist)
        for x, y in recorded.reshape(-1, 2):
            cv2.circle(frame, (int(round(x)), int(round(y))), 2, (255, 0, 0), -1)  # BGR: blue
        writer.write(frame)
    writer.release()
    lens = {"model": "pinhole", "coefficients": [-0.35, 0, 0, 0, 0, 0, 0, 0], "K": K.tolist()}

    def misses(with_lens):
        source = {"path": str(tmp_path / "lens.avi"), "start_time": 0.0}
        take.meta["sources"] = [dict(source, lens=lens) if with_lens else source]
        write_take(tmp_path / "take.npz", take)
        out = tmp_path / f"lens{with_lens}.mp4"
        assert main(["render", str(tmp_path / "take.npz"), "-o", str(out), "--engine", "workbench"]) == 0
        distances = []
        for t, frame in enumerate(_read_video(out)):
            by, bx = np.nonzero(frame[..., 2].astype(int) > 90)  # the recorded body shows through
            pixels = _projected_joints(take, t)
            near_edge = np.abs(pixels[:, 0] - K[0, 2]) > 100
            assert near_edge.sum() >= 6
            distances += [np.min(np.hypot(bx - x, by - y)) for x, y in pixels[near_edge]]
        return np.array(distances)

    undistorted, recorded = misses(True), misses(False)
    assert undistorted.max() <= 2.5, undistorted
    assert recorded.max() > 5.0, recorded  # as recorded the edge joints miss the body by pixels
    capsys.readouterr()
    # Without OpenCV (inside Blender) the frames are shown as recorded, and one line says so.
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)
    undistort, note = source_lens({"lens": lens}, SIZE, "view 0")
    assert undistort is None and note.startswith("view 0: the clip's pinhole lens is not undistorted here")
