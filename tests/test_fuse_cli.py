"""`python -m chromm_addon fuse`: a take from a views file; one-line errors, no partial output."""

import os
import subprocess
import sys

import numpy as np
import pytest

from chromm_addon.cli import main
from chromm_addon.evaluation.simulate import simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.io.take import read_take
from chromm_addon.io.views import write_views

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def views_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("views") / "views.npz"
    write_views(path, simulate_views(make_scene(num_people=2, num_views=3, num_frames=20, seed=1),
                                     "realistic", seed=1))
    return str(path)


def test_fuse_writes_a_valid_take(views_file, tmp_path, capsys):
    out = tmp_path / "take.npz"
    assert main(["fuse", views_file, "-o", str(out)]) == 0
    take = read_take(out)
    assert take.num_people == 2 and take.num_frames == 20 and take.num_views == 3
    assert "det_person" in take.extra
    assert "2 people over 20 timesteps" in capsys.readouterr().out


def test_fuse_with_a_model_file_and_smoothing(views_file, tmp_path, smplx_model_path):
    out = tmp_path / "take.npz"
    assert main(["fuse", views_file, "-o", str(out), "--smplx", smplx_model_path, "--smooth"]) == 0
    take = read_take(out)
    assert take.meta["source"]["smoothed"] is True
    assert np.isfinite(take.transl).all()


@pytest.mark.parametrize("case", ["missing", "not_npz", "lacks_key", "wrong_model", "singular_K",
                                  "not_rotation"])
def test_bad_input_is_one_line_and_leaves_nothing(case, views_file, tmp_path, capsys):
    out = tmp_path / "take.npz"
    args = ["fuse", str(tmp_path / "nope.npz"), "-o", str(out)]
    if case == "not_npz":
        bad = tmp_path / "bad.npz"
        bad.write_text("hello")
        args[1] = str(bad)
    elif case == "lacks_key":
        with np.load(views_file) as data:
            arrays = {k: data[k] for k in data.files if k != "det_head_cam"}
        bad = tmp_path / "lacks.npz"
        np.savez(bad, **arrays)
        args[1] = str(bad)
    elif case in ("singular_K", "not_rotation"):
        with np.load(views_file) as data:
            arrays = {k: data[k] for k in data.files}
        if case == "singular_K":
            arrays["cam_K"][1, 3] = 0.0
        else:
            arrays["cam_c2w"][0, 2, :3, :3] *= 2.0
        bad = tmp_path / f"{case}.npz"
        np.savez(bad, **arrays)
        args[1] = str(bad)
    elif case == "wrong_model":
        args[1] = views_file
        args += ["--smplx", str(tmp_path / "SMPLX_NEUTRAL.npz")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    if case == "lacks_key":
        assert "det_head_cam" in err[0]
    if case in ("singular_K", "not_rotation"):
        assert args[1] in err[0] and ("cam_K" in err[0] or "cam_c2w" in err[0])
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".chromm-")]


def test_runs_as_a_module(views_file, tmp_path):
    out = tmp_path / "take.npz"
    proc = subprocess.run([sys.executable, "-m", "chromm_addon", "fuse", views_file, "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()


def test_fuse_options_from_a_config_file_and_flags(views_file, tmp_path, capsys):
    import json

    config = tmp_path / "options.json"
    config.write_text(json.dumps({"smooth": True, "tracking": {"min_track_s": 0.0}}))
    out = tmp_path / "take.npz"
    assert main(["fuse", views_file, "-o", str(out), "--config", str(config), "--no-smooth",
                 "--association-head-gate-m", "0.45"]) == 0
    take = read_take(out)
    fuse = take.meta["options"]["fuse"]
    assert fuse["smooth"] is False and take.meta["source"]["smoothed"] is False  # the flag wins
    assert fuse["tracking"]["min_track_s"] == 0.0 and fuse["association"]["head_gate_m"] == 0.45
    config.write_text(json.dumps({"tracking": {"min_track": 1}}))
    assert main(["fuse", views_file, "-o", str(tmp_path / "t2.npz"), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "unknown option 'tracking.min_track'" in err[-1]
    assert main(["fuse", views_file, "-o", str(tmp_path / "t3.npz"), "--min-score", "1.5"]) == 2
    assert "--min-score 1.5: out of range (0 to 1)" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "t2.npz") and not os.path.exists(tmp_path / "t3.npz")
