"""Views files (contract 3): exact round trips and precise errors for broken files."""

import json
import os

import numpy as np
import pytest

import npz_cases
from chromm_addon.errors import ChrommError
from chromm_addon.io import views as views_io
from chromm_addon.io.views import Views, make_meta, read_views, write_views

ALL_KEYS = {**views_io.SPECS, **views_io.OPTIONAL}


def make_views(V=3, T=5, D=17, N=40, seed=0, with_points=True):
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    K = np.zeros((V, T, 3, 3), np.float32)
    K[..., 0, 0] = K[..., 1, 1] = 700 + rng.random((V, T))
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = 256.0, 192.0, 1.0
    c2w = np.tile(np.eye(4, dtype=np.float32), (V, T, 1, 1))
    c2w[..., :3, 3] = f32(V, T, 3)
    points = dict(points=f32(N, 3), colors=rng.integers(0, 256, (N, 3)).astype(np.uint8),
                  point_view=rng.integers(0, V, N).astype(np.int32),
                  point_time=rng.integers(0, T, N).astype(np.int32),
                  point_conf=rng.random(N).astype(np.float32)) if with_points else {}
    return Views(
        meta=make_meta(30.0, [f"v{i}" for i in range(V)], model="chromm-test",
                       weights={"pi3x": "ab12", "multihmr": "cd34"}, run={"seed": seed}),
        image_size=np.tile(np.array([512, 384], np.int32), (V, 1)), cam_K=K, cam_c2w=c2w,
        det_view=rng.integers(0, V, D).astype(np.int32), det_time=rng.integers(0, T, D).astype(np.int32),
        det_score=rng.random(D).astype(np.float32), det_head_2d=f32(D, 2), det_pelvis_2d=f32(D, 2),
        det_head_cam=f32(D, 3), det_rotvec=f32(D, 53, 3), det_betas=f32(D, 10),
        det_expression=f32(D, 10), extra={"det_mask_area": rng.random(D)}, **points)


def arrays_of(views):
    return npz_cases.arrays_of(views, ALL_KEYS)


def expect_error(path, *fragments):
    return npz_cases.expect_error(read_views, path, *fragments)


save_raw = npz_cases.save_raw


@pytest.mark.parametrize("with_points", [True, False])
def test_round_trip_is_exact(tmp_path, with_points):
    views = make_views(with_points=with_points)
    write_views(tmp_path / "v.npz", views)
    back = read_views(tmp_path / "v.npz")
    assert back.meta == views.meta
    for key, spec in ALL_KEYS.items():
        want, got = getattr(views, key), getattr(back, key)
        if want is None:
            assert got is None, key
            continue
        assert got.dtype == spec.dtype and got.tobytes() == want.tobytes(), key
    assert list(back.extra) == ["det_mask_area"]
    assert back.extra["det_mask_area"].dtype == np.float64
    assert back.extra["det_mask_area"].tobytes() == views.extra["det_mask_area"].tobytes()
    assert (back.num_views, back.num_frames, back.num_detections) == (3, 5, 17)
    assert back.fps == 30.0


def test_no_detections_is_valid(tmp_path):
    write_views(tmp_path / "v.npz", make_views(D=0))
    assert read_views(tmp_path / "v.npz").num_detections == 0


@pytest.mark.parametrize("key", list(views_io.SPECS) + ["meta"])
def test_missing_key(tmp_path, key):
    arrays = arrays_of(make_views())
    del arrays[key]
    expect_error(save_raw(tmp_path / "v.npz", arrays), f"missing key '{key}'")


@pytest.mark.parametrize("key, shape, fragment", [
    ("det_rotvec", (17, 55, 3), "expected (D, 53, 3)"),
    ("det_betas", (17, 11), "expected (D, 10)"),
    ("cam_c2w", (3, 5, 3, 4), "expected (V, T, 4, 4)"),
    ("det_score", (17, 1), "expected 1 dimensions"),
])
def test_wrong_shape(tmp_path, key, shape, fragment):
    arrays = arrays_of(make_views())
    arrays[key] = np.zeros(shape, arrays[key].dtype)
    expect_error(save_raw(tmp_path / "v.npz", arrays), f"key '{key}'", fragment)


@pytest.mark.parametrize("key, dtype", [("det_view", np.float32), ("det_score", np.int32),
                                        ("colors", np.float32)])
def test_wrong_dtype(tmp_path, key, dtype):
    arrays = arrays_of(make_views())
    arrays[key] = arrays[key].astype(dtype)
    expect_error(save_raw(tmp_path / "v.npz", arrays), f"key '{key}' has dtype")


@pytest.mark.parametrize("key, axis, dim", [("det_time", 0, "D"), ("det_rotvec", 0, "D"),
                                            ("cam_K", 1, "T"), ("image_size", 0, "V"),
                                            ("point_conf", 0, "N")])
def test_dimension_mismatch(tmp_path, key, axis, dim):
    arrays = arrays_of(make_views())
    a = arrays[key]
    arrays[key] = np.concatenate([a, np.take(a, [0], axis=axis)], axis=axis)
    # The first key with the dimension binds it; the message names both keys.
    expect_error(save_raw(tmp_path / "v.npz", arrays), f"'{key}'", f"has {dim}=", " but '")


def test_nan_pickles_truncation_and_not_zip(tmp_path):
    arrays = arrays_of(make_views())
    arrays["det_head_cam"] = arrays["det_head_cam"].copy()
    arrays["det_head_cam"][3, 1] = np.nan
    expect_error(save_raw(tmp_path / "a.npz", arrays), "key 'det_head_cam' contains NaN")

    arrays = arrays_of(make_views())
    arrays["det_score"] = np.array([0.5, None], dtype=object)
    expect_error(save_raw(tmp_path / "b.npz", arrays), "key 'det_score' holds pickled objects")

    path = tmp_path / "c.npz"
    write_views(path, make_views())
    path.write_bytes(path.read_bytes()[:-100])
    expect_error(path, "truncated or corrupt views file")

    path.write_text("det_view,det_time\n0,0\n")
    expect_error(path, "not a views file")


@pytest.mark.parametrize("change, fragment", [
    ({"version": 2}, "unsupported chromm.views version 2"),
    ({"format": "chromm.take"}, "meta format is 'chromm.take', expected 'chromm.views'"),
    ({"fps": 0}, "meta fps must be a positive number, got 0"),
    ({"fps": -1.5}, "meta fps must be a positive number"),
    ({"views": ["a"]}, "meta 'views' must list the 3 view names"),
])
def test_meta_rules(tmp_path, change, fragment):
    views = make_views()
    arrays = arrays_of(views)
    arrays["meta"] = np.array(json.dumps({**views.meta, **change}))
    expect_error(save_raw(tmp_path / "v.npz", arrays), fragment)


@pytest.mark.parametrize("key, value, fragment", [
    ("det_view", 3, "'det_view' has indices outside [0, 2]"),
    ("det_view", -1, "'det_view' has indices outside"),
    ("det_time", 5, "'det_time' has indices outside [0, 4]"),
])
def test_detection_indices(tmp_path, key, value, fragment):
    arrays = arrays_of(make_views())
    arrays[key] = arrays[key].copy()
    arrays[key][4] = value
    expect_error(save_raw(tmp_path / "v.npz", arrays), fragment)


def test_points_need_colors(tmp_path):
    arrays = arrays_of(make_views())
    del arrays["colors"]
    expect_error(save_raw(tmp_path / "v.npz", arrays), "'points' and 'colors' must come together")


@pytest.mark.parametrize("breakage, fragment", [
    (lambda v: setattr(v, "det_score", v.det_score[:-1]), "has D=16"),
    (lambda v: v.meta.__setitem__("fps", float("inf")), "meta fps must be a positive number"),
    (lambda v: v.extra.__setitem__("det_view", np.zeros(17)), "clashes with a key of the format"),
    (lambda v: v.extra.__setitem__("objs", np.array([{}], dtype=object)), "cannot be written"),
])
def test_write_refuses_invalid_views_and_leaves_no_file(tmp_path, breakage, fragment):
    views = make_views()
    breakage(views)
    path = tmp_path / "views.npz"
    with pytest.raises(ChrommError) as info:
        write_views(path, views)
    assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value)
    assert os.listdir(tmp_path) == []
