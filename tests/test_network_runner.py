"""NetworkRunner end to end (tiny network), and pixel coordinates between original, Pi3X-resized
and Multi-HMR-padded images (hand-computed cases)."""

import os

import numpy as np
import pytest

from chromm_addon.network import image_maps as im


def test_resize_map_pixel_centres():
    m = im.resize_map((1920, 1080), (672, 378))  # scale 0.35 both ways
    # The image centre stays the centre: (959.5, 539.5) -> (335.5, 188.5).
    np.testing.assert_allclose(m.apply(np.array([959.5, 539.5])), [335.5, 188.5])
    # Pixel 0's centre: 0.5 * 0.35 - 0.5 = -0.325; the far edge -0.5 maps to -0.5.
    np.testing.assert_allclose(m.apply(np.array([0.0, 0.0])), [-0.325, -0.325])
    np.testing.assert_allclose(m.apply(np.array([-0.5, 1079.5])), [-0.5, 377.5])


def test_inverse_and_composition():
    a = im.resize_map((1000, 500), (350, 182))
    b = im.PixelMap((2.0, 3.0), (1.0, -4.0))
    pts = np.array([[0.0, 0.0], [12.25, 400.0], [999.0, 499.0]])
    np.testing.assert_allclose(a.inverse().apply(a.apply(pts)), pts, atol=1e-9)
    np.testing.assert_allclose(a.then(b).apply(pts), b.apply(a.apply(pts)), atol=1e-9)


def test_contain_and_pad_follow_pil_rounding():
    assert im.contain_size((1920, 1080), 896) == (896, 504)
    assert im.pad_offset((896, 504), 896) == (0, 196)
    assert im.contain_size((1080, 1920), 896) == (504, 896)
    assert im.contain_size((640, 640), 896) == (896, 896)
    # 1000 x 333: 333 / 1000 * 896 = 298.37 -> 298; pad (896 - 298) / 2 = 299.
    assert im.contain_size((1000, 333), 896) == (896, 298)
    assert im.pad_offset((896, 298), 896) == (0, 299)
    # Half-way padding rounds half to even, as PIL does with Python's round: 299.5 -> 300.
    assert im.pad_offset((896, 297), 896) == (0, 300)


def test_multihmr_map_hand_computed():
    m = im.multihmr_map((1920, 1080), 896)  # scale 896 / 1920 = 7 / 15, pad y 196
    np.testing.assert_allclose(m.apply(np.array([959.5, 539.5])), [447.5, 447.5])
    # Pixel (0, 0): edge coordinate 0.5 * 7/15 = 0.2333 -> centre -0.2667; y + 196.
    np.testing.assert_allclose(m.apply(np.array([0.0, 0.0])), [0.5 * 7 / 15 - 0.5, 0.5 * 7 / 15 - 0.5 + 196])
    # The bottom edge of the content, y = 1079.5 -> 504 - 0.5 + 196 = 699.5.
    np.testing.assert_allclose(m.apply(np.array([0.0, 1079.5]))[1], 699.5)


def test_intrinsics_follow_the_points():
    K = np.array([[1000.0, 0.0, 950.0], [0.0, 990.0, 530.0], [0.0, 0.0, 1.0]])
    point = np.array([0.3, -0.2, 2.5])
    pix = (K @ point)[:2] / point[2]
    for m in (im.resize_map((1920, 1080), (672, 378)), im.multihmr_map((1920, 1080), 896),
              im.multihmr_map((1920, 1080), 896).inverse()):
        K2 = m.map_intrinsics(K)
        np.testing.assert_allclose((K2 @ point)[:2] / point[2], m.apply(pix), atol=1e-9)


def test_edge_coordinates():
    # Multi-HMR's patch (row 2, col 3) centre is 3 * 14 + 7 = 49 in edge coordinates, 48.5 OpenCV.
    centre = im.patch_centres(2, 3)
    np.testing.assert_allclose(centre, [48.5, 34.5])
    np.testing.assert_allclose(im.EDGE.apply(centre), [49.0, 35.0])


def test_patch_index_numpy_and_torch():
    xy = np.array([[-0.5, -0.5], [13.4, 13.6], [13.5, 0.0], [1000.0, 1000.0]])
    rows, cols = im.patch_index(xy, (27, 48))
    assert cols.tolist() == [0, 0, 1, 47] and rows.tolist() == [0, 1, 0, 26]
    torch = pytest.importorskip("torch")
    r2, c2 = im.patch_index(torch.tensor(xy), (27, 48))
    assert r2.tolist() == rows.tolist() and c2.tolist() == cols.tolist()


# ------------------------------------------------------------------------------- the runner

@pytest.fixture(scope="module")
def window():
    rng = np.random.default_rng(0)
    # Two views of different sizes and aspect ratios, three timesteps each.
    return [rng.integers(0, 256, (3, 90, 160, 3), dtype=np.uint8),
            rng.integers(0, 256, (3, 120, 100, 3), dtype=np.uint8)]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A weights folder in the upstream layouts (tiny shapes), with a CHROMM checkpoint."""
    torch = pytest.importorskip("torch")
    import argparse

    from safetensors.torch import save_file

    from chromm_addon.network import weights
    from chromm_addon.network.chromm import build_heads, build_multihmr, build_pi3x

    folder = tmp_path_factory.mktemp("weights")
    (folder / "pi3x").mkdir()
    torch.manual_seed(7)
    save_file({k: v.contiguous() for k, v in build_pi3x("tiny").state_dict().items()},
              str(folder / "pi3x" / "model.safetensors"))
    torch.save({"epoch": 0, "iter": 0, "model_state_dict": build_multihmr("tiny").state_dict(),
                "args": argparse.Namespace(img_size=[112], backbone="tiny")}, str(folder / "multiHMR_896_L.pt"))
    heads = build_heads("tiny")
    with torch.no_grad():   # a detectable person mask and pelvis offsets, so the outputs vary
        heads.mask.fc2.bias.fill_(-1.0)
    weights.save_chromm_checkpoint(str(folder / "chromm.safetensors"), heads, heads_preset="tiny")
    return folder


def _check_views(views, window, tmp_path):
    from chromm_addon.io.views import read_views, write_views

    V, T = len(window), window[0].shape[0]
    assert views.cam_K.shape == (V, T, 3, 3) and views.cam_c2w.shape == (V, T, 4, 4)
    assert views.image_size.tolist() == [[160, 90], [100, 120]]
    # Pi3X's principal point is its input's centre, which maps to the original frame's centre.
    for v, (w, h) in enumerate(views.image_size):
        np.testing.assert_allclose(views.cam_K[v, :, 0, 2], (w - 1) / 2, atol=1e-3)
        np.testing.assert_allclose(views.cam_K[v, :, 1, 2], (h - 1) / 2, atol=1e-3)
    np.testing.assert_allclose(views.cam_c2w[..., 3, :], np.broadcast_to([0, 0, 0, 1], (V, T, 4)))
    rot = views.cam_c2w[..., :3, :3]
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-4)
    assert views.num_detections > 0
    assert set(np.unique(views.det_view)) <= {0, 1} and views.det_time.max() < T
    # The 3D head projects onto the 2D head with the view's intrinsics (original pixels).
    for d in range(views.num_detections):
        K = views.cam_K[views.det_view[d], views.det_time[d]].astype(np.float64)
        proj, _ = cv2.projectPoints(views.det_head_cam[d:d + 1].astype(np.float64), np.zeros(3), np.zeros(3), K, None)
        np.testing.assert_allclose(proj[0, 0], views.det_head_2d[d], rtol=1e-3, atol=1e-2)
    assert views.points.shape[0] == views.colors.shape[0] == views.point_view.shape[0] > 0
    assert views.point_time.max() < T and views.point_conf.min() > 0.1
    path = tmp_path / "views.npz"
    write_views(path, views)
    back = read_views(path)
    for key in ("cam_K", "cam_c2w", "det_rotvec", "det_head_2d", "det_pelvis_2d", "points", "colors"):
        np.testing.assert_array_equal(getattr(back, key), getattr(views, key))
    assert back.meta == views.meta
    return back


cv2 = pytest.importorskip("cv2")


def test_tiny_runner_composition_mode(window, tmp_path):
    from chromm_addon.network.runner import NetworkRunner

    runner = NetworkRunner.tiny(seed=0, det_thresh=0.0)
    views = runner.run_window(window, ["left", "right"], fps=12.5)
    back = _check_views(views, window, tmp_path)
    assert back.meta["model"] == "composition(pi3x+multihmr)" and back.meta["weights"] == {}
    assert back.fps == 12.5 and back.meta["views"] == ["left", "right"]
    assert views.det_rotvec.shape[1:] == (53, 3) and np.isfinite(views.det_rotvec).all()


def test_windows_without_people(window, tiny_weights, tmp_path):
    from chromm_addon.io.views import read_views, write_views
    from chromm_addon.network.runner import NetworkRunner

    small = [f[:1, :40, :60] for f in window]
    for runner in (NetworkRunner.tiny(det_thresh=1.0),
                   NetworkRunner(str(tiny_weights), device="cpu", tiny=True, det_thresh=1.0)):
        views = runner.run_window(small, ["a", "b"], fps=10)
        assert views.num_detections == 0 and views.det_rotvec.shape == (0, 53, 3)
        write_views(tmp_path / "empty.npz", views)
        assert read_views(tmp_path / "empty.npz").num_detections == 0


def test_tiny_runner_chromm_checkpoint_mode(window, tiny_weights, tmp_path):
    from chromm_addon.network import weights
    from chromm_addon.network.runner import NetworkRunner

    runner = NetworkRunner(str(tiny_weights), device="cpu", tiny=True, det_thresh=0.0)
    assert runner.reports["pi3x"].missing == [] and runner.reports["heads"].loaded > 0
    views = runner.run_window(window, ["left", "right"], fps=25)
    back = _check_views(views, window, tmp_path)
    assert back.meta["model"] == "chromm"
    assert back.meta["weights"]["chromm.safetensors"] == weights.sha256_file(str(tiny_weights / "chromm.safetensors"))
    assert set(back.meta["weights"]) == {"pi3x/model.safetensors", "multiHMR_896_L.pt", "chromm.safetensors"}


def test_runner_errors(tmp_path, tiny_weights):
    from chromm_addon.errors import ChrommError
    from chromm_addon.network.runner import NetworkRunner, resolve_device

    with pytest.raises(ChrommError, match=r"multiHMR_896_L.pt: network weights not found .*weights check"):
        (tmp_path / "pi3x").mkdir()
        (tmp_path / "pi3x" / "model.safetensors").write_bytes((tiny_weights / "pi3x" / "model.safetensors").read_bytes())
        NetworkRunner(str(tmp_path), device="cpu", tiny=True)
    # Full-size network against tiny files: the first shape mismatch is named.
    with pytest.raises(ChrommError, match=r"model.safetensors: key '.*' has shape"):
        (tmp_path / "multiHMR_896_L.pt").write_bytes((tiny_weights / "multiHMR_896_L.pt").read_bytes())
        NetworkRunner(str(tmp_path), device="cpu", tiny=False)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ChrommError, match="no CUDA GPU"):
            resolve_device("cuda")
    runner = NetworkRunner.tiny()
    frames = [np.zeros((2, 20, 30, 3), np.uint8), np.zeros((3, 20, 30, 3), np.uint8)]
    with pytest.raises(ChrommError, match="view 'b': 3 frames, the window has 2"):
        runner.run_window(frames, ["a", "b"], 10)
    with pytest.raises(ChrommError, match="must be uint8 RGB"):
        runner.run_window([np.zeros((2, 20, 30), np.uint8)], ["a"], 10)


def test_estimate_window_size():
    from chromm_addon.network.runner import estimate_window_size

    one = estimate_window_size("cpu", (1080, 1920), 1)
    four = estimate_window_size("cpu", (1080, 1920), 4)
    assert isinstance(one, int) and 1 <= four <= one <= 64


def test_chromm_checkpoint_backbone_overrides_upstream_file(tiny_weights, tmp_path):
    import shutil

    import torch

    from chromm_addon.network import weights
    from chromm_addon.network.chromm import build_heads, build_pi3x
    from chromm_addon.network.runner import NetworkRunner

    folder = tmp_path / "w"
    shutil.copytree(tiny_weights, folder)
    torch.manual_seed(11)
    tuned = build_pi3x("tiny")
    weights.save_chromm_checkpoint(str(folder / "chromm.safetensors"), build_heads("tiny"), pi3x=tuned,
                                   heads_preset="tiny")
    runner = NetworkRunner(str(folder), device="cpu", tiny=True)
    for key, value in tuned.state_dict().items():
        assert torch.equal(runner.network.pi3x.state_dict()[key], value), key
    assert runner.model_name == "chromm"
    # A CHROMM checkpoint for another configuration is refused before anything is built.
    weights.save_chromm_checkpoint(str(folder / "chromm.safetensors"), build_heads("tiny"), heads_preset="full")
    from chromm_addon.errors import ChrommError

    with pytest.raises(ChrommError, match=r"chromm.safetensors: heads for the 'full' configuration"):
        NetworkRunner(str(folder), device="cpu", tiny=True)


def test_detections_with_non_finite_values_are_dropped():
    import torch

    from chromm_addon.network.runner import _finite_detections

    result = {"K": torch.eye(3).repeat(2, 1, 1), "c2w": torch.eye(4).repeat(2, 1, 1),
              "img": torch.tensor([0, 1, 1]), "score": torch.tensor([0.9, 0.8, 0.7]),
              "head_2d": torch.zeros(3, 2), "pelvis_2d": torch.zeros(3, 2), "head_cam": torch.ones(3, 3),
              "rotvec": torch.zeros(3, 53, 3), "betas": torch.zeros(3, 10), "expression": torch.zeros(3, 10)}
    result["rotvec"][1, 7, 2] = float("nan")
    result["pelvis_2d"][2, 0] = float("inf")
    kept = _finite_detections(result)
    assert kept["img"].tolist() == [0] and kept["score"].tolist() == [pytest.approx(0.9)]
    assert kept["K"].shape == (2, 3, 3)


def test_runners_by_name_implement_the_interface(tiny_weights, tmp_path):
    from chromm_addon.errors import ChrommError
    from chromm_addon.network.interface import Runner
    from chromm_addon.network.registry import NETWORK_CHOICES, RUNNERS, load_runner, resolve_network
    from chromm_addon.options import ReconstructOptions, leaves

    network = next(leaf for leaf in leaves(ReconstructOptions) if leaf.key == "network")
    assert set(network.meta["choices"]) == set(NETWORK_CHOICES) == {"auto", *RUNNERS}
    tiny = load_runner(ReconstructOptions(network="tiny", device="cpu"))
    assert isinstance(tiny, Runner) and tiny.name == "tiny" and str(tiny.device) == "cpu"
    assert 1 <= tiny.window_size((48, 64), 2) <= 64
    # auto picks CHROMM's heads when the checkpoint is there; composition leaves them out.
    assert resolve_network("auto", str(tiny_weights)) == "chromm"
    folder = tmp_path / "no-heads"
    folder.mkdir()
    for name in ("pi3x", "multiHMR_896_L.pt"):
        os.symlink(tiny_weights / name, folder / name)
    assert resolve_network("auto", str(folder)) == "composition"
    with pytest.raises(ChrommError, match=r"chromm.safetensors: network weights not found"):
        load_runner(ReconstructOptions(network="chromm", weights=str(folder), device="cpu"))
    with pytest.raises(ChrommError, match=r"--network 'big': expected auto, chromm, composition, tiny"):
        load_runner(ReconstructOptions(network="big"))
