"""SMPL-X model files read with numpy: shapes, layouts, pickles and precise errors."""

import os
import pickle

import numpy as np
import pytest
import scipy.sparse

from chromm_addon.body.model_file import (ENV_VAR, SmplxModel, convert_pkl_to_npz,
                                          describe_model_file, load_smplx_model,
                                          resolve_model_path)
from chromm_addon.body.skeleton import NUM_JOINTS, PARENTS
from chromm_addon.errors import ChrommError

NV = 2 * NUM_JOINTS  # a tiny model: the loader takes any vertex count


def tiny_model_arrays(num_shape_columns=20, seed=0):
    """A small, structurally valid SMPL-X array set (two vertices per joint)."""
    rng = np.random.default_rng(seed)
    group = np.arange(NV) % NUM_JOINTS
    j_reg = np.zeros((NUM_JOINTS, NV))
    j_reg[group, np.arange(NV)] = 0.5
    weights = np.zeros((NV, NUM_JOINTS))
    weights[np.arange(NV), group] = 1.0
    kintree = np.stack([PARENTS, np.arange(NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    return {
        "v_template": rng.normal(size=(NV, 3)).astype(np.float32),
        "f": rng.integers(0, NV, (30, 3)).astype(np.uint32),
        "shapedirs": rng.normal(size=(NV, 3, num_shape_columns)).astype(np.float32),
        "posedirs": rng.normal(size=(NV, 3, 486)).astype(np.float32),
        "J_regressor": j_reg.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree.astype(np.uint32),
        "hands_meanl": rng.normal(size=45).astype(np.float32),
        "hands_meanr": rng.normal(size=45).astype(np.float32),
    }


def expect_error(path, *fragments, **kwargs):
    with pytest.raises(ChrommError) as info:
        load_smplx_model(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_synthetic_model_loads_with_the_expected_shapes(smplx_model_path):
    model = load_smplx_model(smplx_model_path)
    assert isinstance(model, SmplxModel) and model.path == smplx_model_path
    assert model.num_vertices == 10475
    assert model.v_template.shape == (10475, 3) and model.v_template.dtype == np.float64
    assert model.faces.shape == (20908, 3) and model.faces.dtype == np.int64
    assert model.shapedirs.shape == (10475, 3, 10) and model.exprdirs.shape == (10475, 3, 10)
    assert model.posedirs.shape == (10475, 3, 486)
    assert model.J_regressor.shape == (55, 10475) and model.weights.shape == (10475, 55)
    assert np.array_equal(model.parents, PARENTS)
    assert model.hands_mean_left.shape == (45,) and model.hands_mean_right.shape == (45,)
    with np.load(smplx_model_path) as raw:
        assert np.array_equal(model.v_template, raw["v_template"].astype(np.float64))
        assert np.array_equal(model.exprdirs, raw["shapedirs"][:, :, 10:].astype(np.float64))
        assert np.array_equal(model.hands_mean_left, raw["hands_meanl"].astype(np.float64))
    np.testing.assert_allclose(model.weights.sum(1), 1.0, atol=1e-6)


def test_shaped_vertices_and_rest_joints(smplx_model_path):
    model = load_smplx_model(smplx_model_path)
    rng = np.random.default_rng(3)
    betas, expr = rng.normal(size=10), rng.normal(size=10)
    want = model.v_template + np.einsum("vck,k->vc", model.shapedirs, betas)
    np.testing.assert_allclose(model.shaped_vertices(betas), want, atol=1e-12)
    want += np.einsum("vck,k->vc", model.exprdirs[:, :, :4], expr[:4])
    np.testing.assert_allclose(model.shaped_vertices(betas, expr[:4]), want, atol=1e-12)
    np.testing.assert_allclose(model.rest_joints(betas[:3]),
                               model.J_regressor @ model.shaped_vertices(betas[:3]), atol=1e-12)
    # Leading dimensions batch several bodies.
    batch_b, batch_e = rng.normal(size=(2, 3, 10)), rng.normal(size=(2, 3, 10))
    batched = model.shaped_vertices(batch_b, batch_e)
    assert batched.shape == (2, 3, 10475, 3)
    np.testing.assert_allclose(batched[1, 2], model.shaped_vertices(batch_b[1, 2], batch_e[1, 2]),
                               atol=1e-12)
    assert model.rest_joints(batch_b).shape == (2, 3, 55, 3)


def test_v11_layout_splits_300_shape_and_100_expression(tmp_path):
    arrays = tiny_model_arrays(num_shape_columns=400)
    np.savez(tmp_path / "m.npz", **arrays)
    model = load_smplx_model(tmp_path / "m.npz")
    assert model.shapedirs.shape == (NV, 3, 300) and model.exprdirs.shape == (NV, 3, 100)
    assert np.array_equal(model.exprdirs, arrays["shapedirs"][:, :, 300:].astype(np.float64))


def test_object_arrays_in_npz_are_skipped_not_unpickled(tmp_path):
    arrays = tiny_model_arrays()
    arrays["joint2num"] = np.array({"pelvis": 0}, dtype=object)
    del arrays["hands_meanl"], arrays["hands_meanr"]
    np.savez(tmp_path / "m.npz", **arrays)
    model = load_smplx_model(tmp_path / "m.npz")
    assert np.array_equal(model.hands_mean_left, np.zeros(45))  # absent: flat hands


@pytest.mark.parametrize("key", ["v_template", "f", "shapedirs", "posedirs", "J_regressor",
                                 "weights", "kintree_table"])
def test_missing_key(tmp_path, key):
    arrays = tiny_model_arrays()
    del arrays[key]
    np.savez(tmp_path / "m.npz", **arrays)
    expect_error(tmp_path / "m.npz", f"not an SMPL-X model file (missing '{key}')")


@pytest.mark.parametrize("key, value, fragment", [
    ("v_template", np.zeros((NV, 2)), "'v_template' has shape (110, 2), expected (Nv, 3)"),
    ("shapedirs", np.zeros((NV, 3)), "'shapedirs' has shape (110, 3), expected (110, 3, K)"),
    ("shapedirs", np.zeros((NV - 1, 3, 20)), "'shapedirs' has shape (109, 3, 20)"),
    ("posedirs", np.zeros((NV, 3, 207)), "'posedirs' has shape (110, 3, 207), expected (110, 3, 486)"),
    ("J_regressor", np.zeros((24, NV)), "'J_regressor' has shape (24, 110), expected (55, 110)"),
    ("weights", np.zeros((NV, 24)), "'weights' has shape (110, 24), expected (110, 55)"),
    ("f", np.full((4, 3), NV), "'f' must be (Nf, 3) vertex indices below 110"),
    ("f", np.zeros((4, 4)), "'f' must be (Nf, 3)"),
    ("kintree_table", np.zeros((2, 24)), "'kintree_table' has shape (2, 24), expected (2, 55)"),
    ("hands_meanl", np.zeros(12), "'hands_meanl' has 12 values, expected 45"),
    ("weights", np.full((NV, 55), np.nan), "'weights' contains NaN"),
    ("v_template", np.array("text"), "'v_template' is not a numeric array"),
])
def test_wrong_shapes_and_values(tmp_path, key, value, fragment):
    arrays = tiny_model_arrays()
    arrays[key] = value
    np.savez(tmp_path / "m.npz", **arrays)
    expect_error(tmp_path / "m.npz", fragment)


@pytest.mark.parametrize("joint, parent", [(16, 12), (25, 21), (54, 52)])
def test_wrong_kintree(tmp_path, joint, parent):
    arrays = tiny_model_arrays()
    arrays["kintree_table"] = arrays["kintree_table"].copy()
    arrays["kintree_table"][0, joint] = parent
    np.savez(tmp_path / "m.npz", **arrays)
    expect_error(tmp_path / "m.npz", "'kintree_table' is not the SMPL-X 55-joint tree")


def test_pickle_refused_by_default_and_loaded_when_allowed(tmp_path):
    arrays = tiny_model_arrays()
    data = dict(arrays, J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"].astype(np.float64)))
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    expect_error(path, ".pkl model files are pickles and are refused by default")
    model = load_smplx_model(path, allow_pickle=True)
    assert model.J_regressor.shape == (55, NV) and isinstance(model.J_regressor, np.ndarray)
    np.testing.assert_array_equal(model.J_regressor, arrays["J_regressor"].astype(np.float64))
    np.testing.assert_array_equal(model.faces, arrays["f"].astype(np.int64))


def test_sparse_regressor_pickled_inside_npz_needs_allow_pickle(tmp_path):
    arrays = tiny_model_arrays()
    sparse = scipy.sparse.csr_matrix(arrays["J_regressor"])
    np.savez(tmp_path / "m.npz", **dict(arrays, J_regressor=np.array(sparse, dtype=object)))
    # Without allow_pickle the object array is never unpickled.
    expect_error(tmp_path / "m.npz", "'J_regressor' is stored as pickled objects")
    model = load_smplx_model(tmp_path / "m.npz", allow_pickle=True)
    np.testing.assert_array_equal(model.J_regressor, arrays["J_regressor"].astype(np.float64))


def test_unreadable_files(tmp_path):
    expect_error(tmp_path / "missing.npz", "SMPL-X model file not found", ENV_VAR)
    (tmp_path / "text.npz").write_text("not a zip")
    expect_error(tmp_path / "text.npz", "not a readable SMPL-X .npz")
    np.savez(tmp_path / "whole.npz", **tiny_model_arrays())
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    expect_error(tmp_path / "cut.npz", "not a readable SMPL-X .npz")
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x02garbage")
    expect_error(tmp_path / "bad.pkl", "cannot read the SMPL-X pickle", allow_pickle=True)
    with open(tmp_path / "list.pkl", "wb") as fh:
        pickle.dump([1, 2, 3], fh)
    expect_error(tmp_path / "list.pkl", "cannot read the SMPL-X pickle", allow_pickle=True)


def test_resolve_model_path_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_model_path() is None
    assert resolve_model_path(None, "/prefs/model.npz") == "/prefs/model.npz"
    monkeypatch.setenv(ENV_VAR, "/env/model.npz")
    assert resolve_model_path(None, "/prefs/model.npz") == "/env/model.npz"
    assert resolve_model_path("/cli/model.npz", "/prefs/model.npz") == "/cli/model.npz"
    monkeypatch.setenv(ENV_VAR, "")
    assert resolve_model_path(None, "") is None
    assert resolve_model_path("~/m.npz") == os.path.expanduser("~/m.npz")


# ---------------------------------------------------------------- .pkl read without unpickling code

class _Boom:
    """Unpickling this makes a folder: proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_pkl_with_sparse_regressor_converts_to_an_npz_that_loads_without_pickles(tmp_path):
    arrays = tiny_model_arrays()
    dense = arrays["J_regressor"].astype(np.float64)
    for fmt, proto in (("csc", 2), ("csr", 4)):
        sparse = getattr(scipy.sparse, f"{fmt}_matrix")(dense)
        path = tmp_path / f"SMPLX_NEUTRAL_{fmt}.pkl"
        with open(path, "wb") as fh:
            pickle.dump(dict(arrays, J_regressor=sparse), fh, protocol=proto)
        npz = convert_pkl_to_npz(path, out_dir=tmp_path / "out")
        assert npz == str(tmp_path / "out" / f"SMPLX_NEUTRAL_{fmt}.npz")
        with np.load(npz, allow_pickle=False) as back:  # no object arrays left
            np.testing.assert_array_equal(back["J_regressor"], dense)
        model, want = load_smplx_model(npz), load_smplx_model(path, allow_pickle=True)
        for key in ("v_template", "faces", "shapedirs", "exprdirs", "posedirs", "weights",
                    "parents", "hands_mean_left"):
            np.testing.assert_array_equal(getattr(model, key), getattr(want, key))
        np.testing.assert_array_equal(model.v_template, arrays["v_template"].astype(np.float64))
    assert describe_model_file(npz) == f"{NV} vertices, 55 joints, neutral"
    assert describe_model_file(path) == f"{NV} vertices, 55 joints, neutral"


def test_describe_gives_one_line(smplx_model_path, tmp_path):
    assert describe_model_file(smplx_model_path) == "10475 vertices, 55 joints, neutral"
    np.savez(tmp_path / "SMPLX_MALE.npz", **tiny_model_arrays())
    assert describe_model_file(tmp_path / "SMPLX_MALE.npz").endswith(
        "55 joints, male (CHROMM's bodies are neutral: choose SMPLX_NEUTRAL)")
    np.savez(tmp_path / "bad.npz", **dict(tiny_model_arrays(), weights=np.zeros((3, 3))))
    with pytest.raises(ChrommError, match=r"'weights' has shape \(3, 3\)"):
        describe_model_file(tmp_path / "bad.npz")


def test_pkl_with_chumpy_values_reads_without_chumpy(tmp_path):
    # A pickle as chumpy writes it: class chumpy.ch.Ch rebuilt by copy_reg._reconstructor with
    # its state dict; written by hand with pickle opcodes since chumpy does not install.
    arrays = tiny_model_arrays()
    body = pickle.dumps({k: v for k, v in arrays.items() if k != "shapedirs"}, protocol=2)
    ch = (b"ccopy_reg\n_reconstructor\n" + b"cchumpy.ch\nCh\n" + b"c__builtin__\nobject\nN\x87R"
          + pickle.dumps({"x": arrays["shapedirs"]}, protocol=2)[2:-1] + b"b")
    # Insert 'shapedirs': Ch(...) into the dict before the final STOP.
    blob = body[:-1] + pickle.dumps("shapedirs", protocol=2)[2:-1] + ch + b"s."
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    path.write_bytes(blob)
    model = load_smplx_model(path, allow_pickle=True)
    np.testing.assert_array_equal(model.shapedirs, arrays["shapedirs"][:, :, :10].astype(np.float64))


def test_pkl_with_any_other_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    with open(path, "wb") as fh:
        pickle.dump(dict(tiny_model_arrays(), extra=_Boom(marker)), fh, protocol=2)
    expect_error(path, "cannot read the SMPL-X pickle", "refused to load posix.mkdir", allow_pickle=True)
    with open(path, "wb") as fh:
        pickle.dump(dict(tiny_model_arrays(), f=np.array([_Boom(marker)], dtype=object)), fh)
    expect_error(path, "cannot read the SMPL-X pickle", "refused to load", allow_pickle=True)
    assert not marker.exists()
