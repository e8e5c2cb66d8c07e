"""The batch command without Ray: manifest checks, outputs equal to `reconstruct`, reruns, failures."""

import json
import os

import numpy as np
import pytest

from backend_synth import write_image_folder
from chromm_addon.backend.batch import Batch, LocalExecutor, parse_manifest, read_manifest
from chromm_addon.backend.pipeline import ReconstructOptions, reconstruct
from chromm_addon.cli import main
from chromm_addon.errors import ChrommError
from chromm_addon.io.take import read_take
from chromm_addon.io.views import read_views

RUNNER_OPTIONS = ReconstructOptions(clips=[], device="cpu", network="tiny")


@pytest.fixture(scope="module")
def runner():
    from chromm_addon.network.runner import NetworkRunner

    return NetworkRunner.tiny(seed=0, pixel_limit=14 * 14 * 4)


def make_takes(root, lengths, views=2):
    """Folders of images per take and view; returns the manifest's takes."""
    takes = []
    for name, frames in lengths.items():
        clips = [write_image_folder(os.path.join(root, name, f"view{v}"), num_frames=frames, width=32, height=24)
                 for v in range(views)]
        takes.append({"name": name, "clips": clips})
    return takes


def write_manifest(path, takes, defaults=None):
    with open(path, "w") as fh:
        json.dump({"defaults": defaults or {"image_fps": 10, "window": 4}, "takes": takes}, fh)
    return str(path)


def write_rig(path, views=2, width=32, height=24):
    """A camera document for make_takes' clips: view 1 with a fisheye lens, view 0 posed."""
    cams = [{"clip": f"view{v}", "image_size": [width, height], "fx": 30.0, "fy": 30.0, "cx": 15.5, "cy": 11.5}
            for v in range(views)]
    cams[0]["camera_to_world"] = np.eye(4).tolist()
    cams[1]["distortion"] = {"model": "fisheye", "k1": 0.08, "k2": -0.02}
    with open(path, "w") as fh:
        json.dump({"format": "chromm.cameras", "version": 1, "cameras": cams}, fh)
    return str(path)


def assert_same_outputs(folder_a, folder_b, atol=0.0):
    """Same arrays (within atol) and the same person identities in both folders' take and views."""
    for name, read in (("take.npz", read_take), ("views.npz", read_views)):
        a, b = read(os.path.join(folder_a, name)), read(os.path.join(folder_b, name))
        for key in a.__dataclass_fields__:
            va, vb = getattr(a, key), getattr(b, key)
            if isinstance(va, np.ndarray):
                assert va.shape == vb.shape, (name, key)
                if va.dtype.kind in "iub":
                    np.testing.assert_array_equal(va, vb, err_msg=f"{name} {key}")
                else:
                    np.testing.assert_allclose(va, vb, atol=atol, rtol=0, err_msg=f"{name} {key}")
    assert np.array_equal(read_take(os.path.join(folder_a, "take.npz")).person_ids,
                          read_take(os.path.join(folder_b, "take.npz")).person_ids)


@pytest.mark.slow
def test_local_batch_equals_reconstruct_and_reruns_skip(tmp_path, runner):
    takes = make_takes(tmp_path / "clips", {"short": 5, "long": 11})
    specs = parse_manifest({"defaults": {"image_fps": 10, "window": 4}, "takes": takes}, runner_options=RUNNER_OPTIONS)
    out = tmp_path / "out"
    events = []
    record = Batch(specs, out, LocalExecutor(RUNNER_OPTIONS, runner=runner),
                   events=lambda kind, **info: events.append((kind, info.get("take")))).run()
    assert [t["status"] for t in record["takes"]] == ["done", "done"]
    assert record["takes"][1]["windows"] == 1 + int(np.ceil((11 - 4) / 3)) > 2
    assert ("take_planned", "long") in events and ("take_finished", "long") in events
    for spec in specs:
        alone = tmp_path / "alone" / spec.name
        alone.mkdir(parents=True)
        reconstruct(spec.options, str(alone / "take.npz"), views_out=str(alone / "views.npz"), runner=runner)
        assert_same_outputs(out / spec.name, alone)
    on_disk = json.loads((out / "batch.json").read_text())
    assert on_disk["counts"]["done"] == 2 and on_disk["takes"][0]["seconds"]["network"] > 0

    # Same manifest again: nothing runs; a take with a damaged output or changed settings redoes.
    (out / "short" / "views.npz").write_bytes(b"damaged")
    specs[1].fingerprint = "changed"
    again = Batch(specs, out, LocalExecutor(RUNNER_OPTIONS, runner=runner)).run()
    assert [t["status"] for t in again["takes"]] == ["done", "done"]
    idle = LocalExecutor(RUNNER_OPTIONS)
    third = Batch(specs, out, idle).run()
    assert [t["status"] for t in third["takes"]] == ["skipped", "skipped"]
    assert idle._workers is None  # nothing to run: the network was never loaded
    assert sorted(os.listdir(out / "short")) == ["take.npz", "views.npz"]


@pytest.mark.slow
def test_known_cameras_in_a_batch_equal_reconstruct(tmp_path, runner):
    """cameras = a file relative to the manifest: the reader undistorts, the worker is told the
    cameras, the driver fits the merged views to the given pose; same take as `reconstruct`."""
    (take,) = make_takes(tmp_path / "clips", {"rig": 7})
    write_rig(tmp_path / "rig.json")
    manifest = write_manifest(tmp_path / "m.json", [dict(take, cameras="rig.json")])
    (spec,) = read_manifest(manifest, RUNNER_OPTIONS)
    assert spec.options.cameras == str(tmp_path / "rig.json")
    record = Batch([spec], tmp_path / "out", LocalExecutor(RUNNER_OPTIONS, runner=runner)).run()
    assert record["takes"][0]["status"] == "done", record["takes"][0]["error"]
    alone = tmp_path / "alone"
    alone.mkdir()
    reconstruct(spec.options, str(alone / "take.npz"), views_out=str(alone / "views.npz"), runner=runner)
    assert_same_outputs(tmp_path / "out" / "rig", alone)
    batch_take = read_take(tmp_path / "out" / "rig" / "take.npz")
    assert batch_take.meta["known_cameras"]["undistorted"] == [False, True]
    np.testing.assert_allclose(batch_take.cam_c2w[0], np.repeat(np.eye(4)[None], batch_take.num_frames, 0),
                               atol=1e-5)


def test_broken_clip_fails_its_take_only(tmp_path, runner):
    takes = make_takes(tmp_path / "clips", {"good": 4, "bad": 4})
    broken = tmp_path / "broken.avi"
    broken.write_bytes(os.urandom(2000))
    takes[1]["clips"][1] = str(broken)
    specs = parse_manifest({"defaults": {"image_fps": 10}, "takes": takes}, runner_options=RUNNER_OPTIONS)
    record = Batch(specs, tmp_path / "out", LocalExecutor(RUNNER_OPTIONS, runner=runner)).run()
    good, bad = record["takes"]
    assert good["status"] == "done" and bad["status"] == "failed"
    assert bad["error"].startswith(f"{broken}: not a video")
    assert not os.path.exists(tmp_path / "out" / "bad" / "take.npz")


def test_cli_batch_runs_and_reports(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.json", make_takes(tmp_path / "clips", {"one": 4}, views=1))
    assert main(["batch", manifest, "-o", str(tmp_path / "out"), "--tiny-network", "--quiet"]) == 0
    assert "1 take(s): 1 done" in capsys.readouterr().out
    assert main(["batch", manifest, "-o", str(tmp_path / "out"), "--tiny-network", "--quiet"]) == 0
    assert "0 done, 1 skipped" in capsys.readouterr().out


def test_toml_manifest_with_relative_paths(tmp_path):
    write_image_folder(tmp_path / "shoot" / "cam_a", num_frames=2, width=8, height=6)
    path = tmp_path / "m.toml"
    path.write_text('[defaults]\nfps = 10\n\n[[takes]]\nname = "walk_01"\nclips = ["shoot/cam_a"]\n'
                    'offsets = ["0.5s"]\nend = 2.0\n')
    (spec,) = read_manifest(path, RUNNER_OPTIONS)
    assert spec.name == "walk_01" and spec.options.clips == [str(tmp_path / "shoot" / "cam_a")]
    assert spec.options.fps == 10 and spec.options.offsets == ["0.5s"] and spec.options.end == 2.0
    assert spec.options.tiny_network


@pytest.mark.parametrize("data, message", [
    ({"takes": [{"name": "a", "clips": ["CLIP"], "fsp": 3}]}, "takes[0]: unknown key 'fsp'"),
    ({"take": []}, "unknown key 'take'"),
    ({"takes": [{"name": "a", "clips": ["CLIP"]}, {"name": "a", "clips": ["CLIP"]}]}, "take 'a': duplicate take name"),
    ({"takes": [{"name": "a", "clips": ["MISSING"]}]}, "MISSING: no such file or folder (take 'a')"),
    ({"takes": [{"name": "../x", "clips": ["CLIP"]}]}, "name '../x' must be"),
    ({"takes": [{"name": "a", "clips": ["CLIP"], "offsets": ["1s", "2s"]}]},
     "offsets must be a list with one per clip"),
    ({"takes": [{"name": "a", "clips": ["CLIP"], "overlay": 3}]}, "overlay must be a view index, 0..0"),
    ({"takes": [{"name": "a", "clips": ["CLIP"], "fuse": {"smooth": "yes"}}]},
     "take 'a': smooth: expected true or false"),
    ({"takes": [{"name": "a", "clips": ["CLIP"], "window": 1}]}, "window 1: out of range"),
    ({"defaults": {"clips": []}, "takes": []}, "defaults: 'clips' belongs to each take"),
    ({"takes": []}, "no takes"),
])
def test_bad_manifests(tmp_path, data, message):
    clip = write_image_folder(tmp_path / "clip", num_frames=2, width=8, height=6)
    text = json.dumps(data).replace("MISSING", str(tmp_path / "missing.mp4")).replace("CLIP", clip)
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ChrommError) as info:
        read_manifest(path)
    assert message.replace("MISSING", str(tmp_path / "missing.mp4")) in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_bad_input_one_line_each(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.json", make_takes(tmp_path / "clips", {"one": 2}, views=1))
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    cases = [
        (["batch", manifest, "-o", str(blocked / "out")], "cannot create the output folder"),
        (["batch", manifest, "-o", str(tmp_path / "o"), "--ray", "127.0.0.1:9"], "no Ray cluster answers there"),
        (["batch", manifest, "-o", str(tmp_path / "o"), "--ray", "nonsense"], "expected auto, local or HOST:PORT"),
        (["batch", str(tmp_path / "none.toml"), "-o", str(tmp_path / "o")], "cannot read the manifest"),
    ]
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        cases.append((["batch", manifest, "-o", str(locked)], "not writable"))
    for argv, message in cases:
        assert main(argv + ["--tiny-network", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    # `serve --ray` answers an unreachable cluster the same way, before it listens.
    assert main(["serve", "--port", "0", "--tiny-network", "--ray", "127.0.0.1:9"]) == 2
    assert "no Ray cluster answers there" in capsys.readouterr().err


@pytest.mark.blender
@pytest.mark.slow
def test_blend_and_overlay_per_take(tmp_path, runner):
    """blend = true and overlay = 0: take.blend and the overlay video and still, read back with
    PyAV and Pillow; a rerun verifies and skips them."""
    pytest.importorskip("bpy")
    import av
    from PIL import Image

    from backend_synth import write_clip

    clips = [write_clip(tmp_path / f"cam{v}.avi", 5, 10, width=64, height=48) for v in range(2)]
    specs = parse_manifest({"takes": [{"name": "t", "clips": clips, "blend": True, "overlay": 1}]},
                           runner_options=RUNNER_OPTIONS)
    record = Batch(specs, tmp_path / "out", LocalExecutor(RUNNER_OPTIONS, runner=runner)).run()
    assert record["takes"][0]["status"] == "done", record["takes"][0]["error"]
    folder = tmp_path / "out" / "t"
    assert sorted(os.listdir(folder)) == ["overlay.mp4", "overlay.png", "take.blend", "take.npz", "views.npz"]
    with av.open(str(folder / "overlay.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == read_take(folder / "take.npz").num_frames and frames[0].shape == (48, 64, 3)
    assert Image.open(folder / "overlay.png").size == (64, 48)
    assert record["takes"][0]["seconds"]["render"] > 0
    again = Batch(specs, tmp_path / "out", LocalExecutor(RUNNER_OPTIONS, runner=runner)).run()
    assert again["takes"][0]["status"] == "skipped"
