"""Checkpoint loading: the three file kinds, strict shapes, key reports, the pickle allow-list."""

import argparse
import os

import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import save_file  # noqa: E402

from chromm_addon.errors import ChrommError  # noqa: E402
from chromm_addon.network import weights  # noqa: E402
from chromm_addon.network.chromm import build_heads, build_multihmr, build_pi3x  # noqa: E402


def _random_state(module, seed):
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v.clone()
            for k, v in module.state_dict().items()}


def _save_multihmr_pt(path, state, args=None):
    torch.save({"epoch": 3, "iter": 1000, "model_state_dict": state,
                "args": args if args is not None else argparse.Namespace(img_size=[896], backbone="dinov2_vitl14")},
               path)


def test_default_folder_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("CHROMM_WEIGHTS", str(tmp_path / "w"))
    assert weights.default_weights_dir() == str(tmp_path / "w")
    monkeypatch.delenv("CHROMM_WEIGHTS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert weights.default_weights_dir() == os.path.join(str(tmp_path / "cache"), "chromm", "weights")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert weights.default_weights_dir() == os.path.join(os.path.expanduser("~"), ".cache", "chromm", "weights")


def test_find_files_prefers_pi3x_subfolder(tmp_path):
    (tmp_path / "pi3x").mkdir()
    for name in ("pi3x/model.safetensors", "model.safetensors", "multiHMR_896_L.pt"):
        (tmp_path / name).write_bytes(b"x")
    found = weights.find_weight_files(str(tmp_path))
    assert found.pi3x == str(tmp_path / "pi3x" / "model.safetensors")
    assert found.multihmr == str(tmp_path / "multiHMR_896_L.pt")
    assert found.chromm is None


def test_pi3x_safetensors_loads_the_multimodal_branch_and_reports_foreign_keys(tmp_path):
    source = build_pi3x("tiny")
    state = _random_state(source, 1)
    assert any(k.startswith("pose_inject_blk.") for k in state)
    state["some_future_head.weight"] = torch.zeros(3)
    path = str(tmp_path / "model.safetensors")
    save_file(state, path)

    target = build_pi3x("tiny")
    report = weights.load_into(target, weights.read_state_dict(path, "pi3x"), path, "pi3x")
    assert report.missing == [] and report.unused == [] and not report.optional_absent
    assert report.unexpected == ["some_future_head.weight"]
    assert report.loaded == len(target.state_dict())
    for key, value in target.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_pi3x_file_without_the_multimodal_branch_loads_without_it(tmp_path):
    from chromm_addon.network.pi3x import MULTIMODAL_PREFIXES

    assert weights.OPTIONAL_PREFIXES["pi3x"] == MULTIMODAL_PREFIXES
    source = build_pi3x("tiny")
    state = {k: v for k, v in _random_state(source, 1).items() if not k.startswith(MULTIMODAL_PREFIXES)}
    path = str(tmp_path / "model.safetensors")
    save_file(state, path)
    target = build_pi3x("tiny")
    report = weights.load_into(target, weights.read_state_dict(path, "pi3x"), path, "pi3x")
    assert report.missing == [] and report.optional_absent and "no conditioning" in report.summary()
    assert not target.config.multimodal and not hasattr(target, "ray_embed")
    # a file with part of the branch is missing the rest
    partial = dict(state, **{"depth_emb": torch.zeros(1, 1, 64)})
    report = weights.match_shapes(weights.module_shapes(build_pi3x("tiny")), {k: tuple(v.shape) for k, v in partial.items()},
                                  path, optional_prefixes=MULTIMODAL_PREFIXES)
    assert report.missing and all(k.startswith(MULTIMODAL_PREFIXES) for k in report.missing)


def test_meta_module_takes_the_checkpoint_tensors(tmp_path):
    source = build_pi3x("tiny")
    path = str(tmp_path / "model.safetensors")
    save_file(_random_state(source, 2), path)
    with torch.device("meta"):
        target = build_pi3x("tiny")
    weights.load_into(target, weights.read_state_dict(path, "pi3x"), path, "pi3x", device="cpu")
    assert not any(t.is_meta for t in target.state_dict().values())
    assert torch.equal(target.encoder.pos_embed, weights.read_state_dict(path, "pi3x")["encoder.pos_embed"])


def test_shape_mismatch_names_key_file_and_shapes(tmp_path):
    state = _random_state(build_pi3x("tiny"), 3)
    state["metric_head.weight"] = torch.zeros(1, 7)
    path = str(tmp_path / "model.safetensors")
    save_file(state, path)
    with pytest.raises(ChrommError) as err:
        weights.load_into(build_pi3x("tiny"), weights.read_state_dict(path, "pi3x"), path, "pi3x")
    msg = str(err.value)
    assert path in msg and "metric_head.weight" in msg and "[1, 7]" in msg and "[1, 32]" in msg


def test_missing_keys_are_an_error(tmp_path):
    state = _random_state(build_pi3x("tiny"), 4)
    del state["register_token"]
    path = str(tmp_path / "model.safetensors")
    save_file(state, path)
    with pytest.raises(ChrommError, match="register_token"):
        weights.load_into(build_pi3x("tiny"), weights.read_state_dict(path, "pi3x"), path, "pi3x")
    report = weights.match_shapes(weights.module_shapes(build_pi3x("tiny")),
                                  weights.read_key_shapes(path, "pi3x"), path)
    assert report.missing == ["register_token"]


def test_multihmr_pickle_loads_with_namespace_allow_list(tmp_path):
    source = build_multihmr("tiny")
    state = _random_state(source, 5)
    state["smpl_layer.neutral_10.bm_x.shapedirs"] = torch.zeros(4, 3, 10)
    path = str(tmp_path / "multiHMR_896_L.pt")
    _save_multihmr_pt(path, state)

    loaded, args = weights.read_multihmr_checkpoint(path)
    assert isinstance(args, argparse.Namespace) and args.img_size == [896]
    shapes = weights.read_key_shapes(path, "multihmr")
    assert shapes == {k: tuple(v.shape) for k, v in state.items()}
    target = build_multihmr("tiny")
    report = weights.load_into(target, loaded, path, "multihmr")
    assert report.unused == ["smpl_layer.neutral_10.bm_x.shapedirs"] and not report.unexpected
    for key, value in target.state_dict().items():
        assert torch.equal(value, state[key]), key


class NotAllowed:
    """A class a Multi-HMR checkpoint has no business holding."""


def test_pickle_with_another_class_is_refused(tmp_path):
    path = str(tmp_path / "multiHMR_896_L.pt")
    _save_multihmr_pt(path, {"a": torch.zeros(2)}, args=NotAllowed())
    with pytest.raises(ChrommError) as err:
        weights.read_multihmr_checkpoint(path)
    assert path in str(err.value) and "NotAllowed" in str(err.value) and "refused" in str(err.value)


def test_unreadable_files_give_one_line(tmp_path):
    bad = tmp_path / "multiHMR_896_L.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ChrommError, match="not a readable torch checkpoint"):
        weights.read_key_shapes(str(bad), "multihmr")
    bad_st = tmp_path / "model.safetensors"
    bad_st.write_bytes(b"\x00" * 4)
    with pytest.raises(ChrommError, match="not a readable safetensors file"):
        weights.read_key_shapes(str(bad_st), "pi3x")


def test_chromm_checkpoint_round_trip(tmp_path):
    heads, pi3x = build_heads("tiny"), build_pi3x("tiny")
    path = str(tmp_path / "chromm.safetensors")
    weights.save_chromm_checkpoint(path, heads, pi3x=pi3x, heads_preset="tiny")
    assert weights.check_chromm_metadata(path)["heads_preset"] == "tiny"
    parts = weights.split_chromm_state(weights.read_state_dict(path, "chromm"), path)
    assert parts["multihmr"] == {}
    target = build_heads("tiny")
    weights.load_into(target, parts["heads"], path, "chromm")
    for key, value in heads.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)
    assert set(parts["pi3x"]) == set(pi3x.state_dict())


def test_chromm_checkpoint_layout_is_checked(tmp_path):
    path = str(tmp_path / "chromm.safetensors")
    save_file({"heads.fuse.fc1.weight": torch.zeros(2, 2)}, path, metadata={"format": "other"})
    with pytest.raises(ChrommError, match="not a CHROMM checkpoint"):
        weights.check_chromm_metadata(path)
    with pytest.raises(ChrommError, match="'stray.weight' has none of the prefixes"):
        weights.split_chromm_state({"stray.weight": torch.zeros(1)}, path)
    with pytest.raises(ChrommError, match="must hold the 'heads.' weights"):
        weights.split_chromm_state({"pi3x.encoder.x": torch.zeros(1)}, path)


def test_sha256_matches_hashlib_and_cache_follows_changes(tmp_path):
    import hashlib

    path = tmp_path / "multiHMR_896_L.pt"
    path.write_bytes(b"abc" * 1000)
    assert weights.sha256_file(str(path)) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert (tmp_path / ".chromm-hashes.json").exists()
    assert weights.sha256_file(str(path)) == hashlib.sha256(b"abc" * 1000).hexdigest()
    path.write_bytes(b"abcd" * 1000)
    assert weights.sha256_file(str(path)) == hashlib.sha256(b"abcd" * 1000).hexdigest()


# ------------------------------------------------------------------------------ the commands

def _cli(*args, env=None):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-m", "chromm_addon", *args], cwd=root, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_model_info_matches_reference_counts():
    proc = _cli("model", "info")
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        if line.endswith("M") and not line.startswith(" "):
            name, value = line.rsplit(None, 1)
            rows[name.strip()] = float(value[:-1])
    assert rows["Pi3X (scene, cameras, metric scale)"] == 1360.03   # with the multimodal branch
    assert rows["Multi-HMR ViT-L/14 @ 896 (people)"] == 317.11
    heads = rows["CHROMM heads (fusion, SMPL-X, depth, mask, pelvis)"]
    assert heads > 0 and abs(rows["total"] - (1360.03 + 317.11 + heads)) < 0.02


def _tiny_folder(folder):
    folder.mkdir(exist_ok=True)
    (folder / "pi3x").mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in _random_state(build_pi3x("tiny"), 8).items()},
              str(folder / "pi3x" / "model.safetensors"))
    _save_multihmr_pt(str(folder / "multiHMR_896_L.pt"), _random_state(build_multihmr("tiny"), 9))
    return folder


def test_weights_check_reports_present_valid_files(tmp_path):
    import hashlib

    folder = _tiny_folder(tmp_path / "w")
    weights.save_chromm_checkpoint(str(folder / "chromm.safetensors"), build_heads("tiny"), heads_preset="tiny")
    proc = _cli("weights", "check", "--preset", "tiny", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    digest = hashlib.sha256((folder / "multiHMR_896_L.pt").read_bytes()).hexdigest()
    assert f"sha256 {digest}" in proc.stdout
    assert proc.stdout.count("present") == 3 and "CHROMM heads" in proc.stdout


@pytest.mark.slow
def test_weights_check_missing_and_invalid(tmp_path):
    proc = _cli("weights", "check", str(tmp_path), "--no-hash")
    assert proc.returncode == 2
    assert "yyfz233/Pi3X" in proc.stdout and "naver/multiHMR_896_L" in proc.stdout
    assert str(tmp_path / "multiHMR_896_L.pt") in proc.stdout
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "multiHMR_896_L.pt is missing" in proc.stderr and "Traceback" not in proc.stderr
    # Tiny files against the full architecture: present but invalid, the key named.
    folder = _tiny_folder(tmp_path / "tiny")
    proc = _cli("weights", "check", str(folder), "--no-hash", env={"CHROMM_WEIGHTS": "/nonexistent"})
    assert proc.returncode == 2 and "INVALID" in proc.stdout and "has shape" in proc.stderr
    # The default folder comes from CHROMM_WEIGHTS.
    proc = _cli("weights", "check", "--preset", "tiny", "--no-hash", env={"CHROMM_WEIGHTS": str(folder)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"weights folder: {folder}" in proc.stdout
