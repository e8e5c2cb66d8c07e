"""The network branch of the demo: sample rendering, joints of a take, the preview image."""

import cv2
import numpy as np
import pytest

from chromm_addon.backend.demo_network import (draw_preview, network_available, render_sample, run_network_demo,
                                               take_joints)
from chromm_addon.io.take import read_take


def test_network_available_names_the_missing_file(tmp_path):
    ok, why = network_available(str(tmp_path))
    assert not ok and str(tmp_path) in why and "weights check" in why


def test_take_joints_match_the_scene_and_preview_draws_them(tmp_path):
    paths, scene, joints = render_sample(str(tmp_path / "clips"), num_views=2, seconds=0.5, fps=10,
                                         num_people=2, image_size=(160, 96))
    assert len(paths) == 2
    cap = cv2.VideoCapture(paths[1])
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == scene.num_frames == 5
    take = scene.to_take()
    np.testing.assert_allclose(take_joints(take), joints, atol=1e-4)
    blank = np.zeros((96, 160, 3), np.uint8)
    image, drawn = draw_preview(blank, take, joints, view=0, t=2)
    w2c0 = np.linalg.inv(take.cam_c2w[0, 2].astype(np.float64))
    in_front = [bool(np.all((joints[p, 2, :22] @ w2c0[:3, :3].T + w2c0[:3, 3])[:, 2] > 0)) for p in range(2)]
    assert drawn == sum(in_front) >= 1
    # The drawn joints sit where cv2.projectPoints puts them.
    w2c = np.linalg.inv(take.cam_c2w[0, 2].astype(np.float64))
    pix, _ = cv2.projectPoints(joints[0, 2, :22].reshape(-1, 1, 3), cv2.Rodrigues(w2c[:3, :3])[0], w2c[:3, 3],
                               take.cam_K[0, 2].astype(np.float64), None)
    inside = [(int(round(x)), int(round(y))) for x, y in pix.reshape(-1, 2) if 0 <= x < 160 and 0 <= y < 96]
    assert inside and all(image[y, x].max() > 0 for x, y in inside)


@pytest.mark.slow
def test_demo_with_the_tiny_network(tmp_path, smplx_model_path):
    from chromm_addon.network.runner import NetworkRunner

    runner = NetworkRunner.tiny(seed=0, pixel_limit=14 * 14 * 4)
    files = run_network_demo(str(tmp_path), smplx=smplx_model_path, num_views=2, num_people=1, seconds=0.3,
                             fps=10, image_size=(96, 64), blend=False, runner=runner, window=4)
    take = read_take(files["take"])
    assert take.num_views == 2 and take.num_frames == 3
    preview = cv2.imread(files["preview"])
    assert preview.shape == (64, 96, 3)


def test_demo_command_takes_the_network_branch_when_weights_are_there(tmp_path, capsys):
    from chromm_addon.cli import main

    weights = tmp_path / "weights"
    (weights / "pi3x").mkdir(parents=True)
    (weights / "pi3x" / "model.safetensors").write_bytes(b"not a checkpoint")
    (weights / "multiHMR_896_L.pt").write_bytes(b"not a checkpoint")
    code = main(["demo", "--out", str(tmp_path / "out"), "--weights", str(weights), "--views", "2",
                 "--people", "1", "--device", "cpu", "--no-blend"])
    captured = capsys.readouterr()
    assert "weights found" in captured.out and "NOT RUN" not in captured.out
    # Unusable weights: one error line naming the file, and no take.
    assert code == 2 and "model.safetensors" in captured.err.strip().splitlines()[-1]
    assert not (tmp_path / "out" / "take.npz").exists()
