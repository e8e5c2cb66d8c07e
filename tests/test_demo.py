"""`python -m chromm_addon demo`: says the network was not run, writes views, take, .blend and the
overlay render (video and still)."""

import os

import pytest

from chromm_addon.cli import main
from chromm_addon.io.take import read_take
from chromm_addon.io.views import read_views


def test_demo_without_blend(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CHROMM_SMPLX_MODEL", raising=False)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--people", "2", "--views", "3", "--frames", "20",
                 "--no-blend"]) == 0
    text = capsys.readouterr().out
    assert "network: NOT RUN" in text
    assert "W-MPJPE" in text and "association accuracy" in text
    views = read_views(out / "views.npz")
    take = read_take(out / "take.npz")
    assert views.num_views == take.num_views == 3 and take.num_people == 2
    assert not (out / "take.blend").exists()


def test_demo_rejects_bad_sizes(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--views", "0"]) == 2
    assert "--views" in capsys.readouterr().err


@pytest.mark.blender
@pytest.mark.slow
def test_demo_builds_the_blend_with_a_mesh(tmp_path, capsys, smplx_model_path):
    pytest.importorskip("bpy")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--people", "1", "--views", "2", "--frames", "5",
                 "--smplx", smplx_model_path]) == 0
    text = capsys.readouterr().out
    assert "SMPL-X meshes from" in text
    assert os.path.getsize(out / "take.blend") > 0
    # The overlay of the reconstructed people over view 0's footage, video and still.
    assert "overlay: the reconstructed people over view 0" in text
    assert os.path.getsize(out / "overlay.mp4") > 0
    from PIL import Image

    with Image.open(out / "preview.png") as still:
        width, height = (int(s) // 2 for s in read_take(out / "take.npz").image_size[0])
        assert still.size == (width, height)
