"""`python -m chromm_addon reconstruct` end to end on small synthetic clips (tiny network)."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from backend_synth import write_clip
from chromm_addon.cli import main
from chromm_addon.io.take import read_take
from chromm_addon.io.views import read_views

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_BPY = importlib.util.find_spec("bpy") is not None


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return [write_clip(folder / "front.avi", 15, 15),                        # 1.0 s at 15 fps
            write_clip(folder / "side.avi", 24, 20, width=48, height=40),    # 1.2 s at 20 fps
            write_clip(folder / "back.mp4", 14, 12)]                         # 1.17 s at 12 fps


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "chromm_addon", "reconstruct", *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_reconstruct_end_to_end(clips, tmp_path, smplx_model_path):
    take_path, views_path, blend_path = tmp_path / "take.npz", tmp_path / "views.npz", tmp_path / "take.blend"
    args = [*clips, "-o", str(take_path), "--views-out", str(views_path), "--tiny-network",
            "--offsets", "0s", "2f", "0.1s", "--fps", "10", "--start", "0.1", "--end", "0.4", "--window", "3",
            "--smplx", smplx_model_path, "--smooth", "--tracking-min-track-s", "0"]
    if HAS_BPY:
        args += ["--blend", str(blend_path)]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    # The progress bar went to stderr: stages, counts and an ETA.
    assert "[network]" in done.stderr and "4/4" in done.stderr and "ETA" in done.stderr
    assert "[   fuse]" in done.stderr
    assert "reconstructed 4 timesteps of 3 views in 2 window(s) of 3" in done.stdout
    take = read_take(str(take_path))
    views = read_views(str(views_path))
    assert take.view_names == ["front", "side", "back"] == views.meta["views"]
    assert take.num_frames == views.num_frames == 4
    assert take.fps == 10.0
    # The fusion options reached fuse_views, and every option is recorded in the take.
    assert take.meta["source"]["smoothed"] is True
    assert take.meta["options"]["fuse"]["tracking"]["min_track_s"] == 0.0
    assert take.meta["options"]["network"] == "tiny" and take.meta["options"]["window"] == 3
    np.testing.assert_array_equal(take.image_size, [[64, 48], [48, 40], [64, 48]])
    assert views.meta["offsets_s"] == pytest.approx([0.0, 0.1, 0.1])
    assert views.meta["start_s"] == pytest.approx(0.1)
    assert [w["start"] for w in views.meta["windows"]] == [0, 2]
    # Each view's clip and its time at timestep 0 (common start 0.1 s + that clip's offset).
    assert [s["path"] for s in take.meta["sources"]] == [os.path.abspath(c) for c in clips]
    assert [s["start_time"] for s in take.meta["sources"]] == pytest.approx([0.1, 0.2, 0.2])
    if HAS_BPY:
        assert blend_path.stat().st_size > 0
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".chromm")]
    assert leftovers == []


def test_bad_inputs_exit_2_with_one_line(clips, tmp_path, capsys):
    out = tmp_path / "take.npz"
    cases = [
        ([str(tmp_path / "missing.mp4"), "-o", str(out)], "missing.mp4: no such file"),
        ([clips[0], clips[1], "-o", str(out), "--offsets", "0s", "9s"], "do not overlap"),
        ([clips[0], clips[1], "-o", str(out), "--offsets=-5s,0s"], "covers 5.000..5.933 s"),
        ([clips[0], "-o", str(out), "--offsets", "0s", "1s"], "2 offsets given for 1 clips"),
        ([clips[0], "-o", str(out), "--offsets", "soon"], "offset 'soon'"),
        ([clips[0], "-o", str(tmp_path / "take.txt")], "must end in .npz"),
        ([clips[0], "-o", str(out), "--fps", "0"], "--fps 0: out of range"),
        ([clips[0], "-o", str(out), "--device", "tpu"], "expected auto, cpu or cuda"),
        ([clips[0], "-o", str(tmp_path / "nofolder" / "take.npz")], "output folder does not exist"),
        ([clips[0], "-o", str(out), "--window", "1", "--tiny-network"], "--window 1"),
        ([clips[0], "-o", str(out), "--weights", str(tmp_path / "noweights")], "pi3x/model.safetensors: network weights not found"),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append(([clips[0], "-o", str(out), "--device", "cuda"], "CUDA is not available"))
    for args, words in cases:
        code = main(["reconstruct", *args, "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (args, err)
        assert err[-1].startswith("error: ") and words in err[-1], (args, err)
        assert "Traceback" not in "\n".join(err)
    assert os.listdir(tmp_path) == []


def test_failure_after_the_network_leaves_no_output(clips, tmp_path, capsys):
    bad_model = tmp_path / "model.npz"
    np.savez(bad_model, nothing=np.zeros(1))
    take_path, views_path = tmp_path / "take.npz", tmp_path / "views.npz"
    code = main(["reconstruct", clips[0], "-o", str(take_path), "--views-out", str(views_path), "--tiny-network",
                 "--end", "0.07", "--smplx", str(bad_model), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not an SMPL-X model file" in err
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
