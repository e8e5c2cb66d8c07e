"""Take files (contract 1): exact round trips and one precise error per way a file can be wrong."""

import json
import os
import zipfile

import numpy as np
import pytest

import npz_cases
from chromm_addon.errors import ChrommError
from chromm_addon.io import take as take_io
from chromm_addon.io.take import Take, make_meta, read_take, write_take

REQUIRED = [k for k, spec in take_io.SPECS.items() if not spec.optional]


def make_take(V=2, T=4, P=3, N=50, B=10, E=10, seed=0, point_frames=True):
    rng = np.random.default_rng(seed)
    f32 = lambda *shape, scale=1.0: (rng.normal(size=shape) * scale).astype(np.float32)  # noqa: E731
    K = np.zeros((V, T, 3, 3), np.float32)
    K[..., 0, 0], K[..., 1, 1] = 800 + rng.random((V, T)), 810 + rng.random((V, T))
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = 320.5, 239.25, 1.0
    c2w = np.tile(np.eye(4, dtype=np.float32), (V, T, 1, 1))
    c2w[..., :3, 3] = f32(V, T, 3)
    return Take(
        meta=make_meta(29.97, [f"cam{i}" for i in range(V)], B, E, flat_hand_mean=False,
                       source={"clips": ["a.mp4", "b.mp4"]}),
        frame_times=np.cumsum(rng.random(T) + 0.01) - 0.5,
        image_size=rng.integers(100, 2000, (V, 2)).astype(np.int32),
        cam_K=K, cam_c2w=c2w,
        points=f32(N, 3), colors=rng.integers(0, 256, (N, 3)).astype(np.uint8),
        point_frames=rng.integers(-1, T, N).astype(np.int32) if point_frames else None,
        person_ids=rng.permutation(100)[:P].astype(np.int32),
        betas=f32(P, B), expression=f32(P, T, E),
        global_orient=f32(P, T, 3), jaw_pose=f32(P, T, 3, scale=0.1),
        body_pose=f32(P, T, 21, 3, scale=0.3),
        left_hand_pose=f32(P, T, 15, 3, scale=0.3), right_hand_pose=f32(P, T, 15, 3, scale=0.3),
        transl=f32(P, T, 3), valid=rng.random((P, T)) > 0.3,
        extra={"depth_confidence": rng.random((V, T, 4, 5)).astype(np.float16),
               "notes": np.array("free text")})


def arrays_of(take):
    return npz_cases.arrays_of(take, take_io.SPECS)


def expect_error(path, *fragments):
    return npz_cases.expect_error(read_take, path, *fragments)


save_raw = npz_cases.save_raw


# ---------------------------------------------------------------- round trip

@pytest.mark.parametrize("point_frames", [True, False])
def test_round_trip_is_exact(tmp_path, point_frames):
    take = make_take(point_frames=point_frames)
    path = tmp_path / "take.npz"
    assert write_take(path, take) == path
    back = read_take(path)
    assert back.meta == take.meta
    assert back.meta["source"] == {"clips": ["a.mp4", "b.mp4"]}
    for key, spec in take_io.SPECS.items():
        want, got = getattr(take, key), getattr(back, key)
        if want is None:
            assert got is None
            continue
        assert got.dtype == spec.dtype and got.shape == want.shape, key
        assert got.tobytes() == want.astype(spec.dtype).tobytes(), key
    assert set(back.extra) == {"depth_confidence", "notes"}
    assert back.extra["depth_confidence"].dtype == np.float16
    assert back.extra["depth_confidence"].tobytes() == take.extra["depth_confidence"].tobytes()
    assert str(back.extra["notes"]) == "free text"
    # Writing what was read gives the same file contents again.
    path2 = tmp_path / "again.npz"
    write_take(path2, back)
    again = read_take(path2)
    for key in take_io.SPECS:
        a, b = getattr(back, key), getattr(again, key)
        assert (a is None and b is None) or a.tobytes() == b.tobytes()
    assert again.meta == back.meta


def test_properties_and_casting(tmp_path):
    take = make_take(T=5, P=2, V=3)
    take.cam_K = take.cam_K.astype(np.float64)        # float64 is accepted and stored as float32
    take.person_ids = take.person_ids.astype(np.int64)
    write_take(tmp_path / "t.npz", take)
    back = read_take(tmp_path / "t.npz")
    assert back.cam_K.dtype == np.float32 and back.person_ids.dtype == np.int32
    assert np.array_equal(back.cam_K, take.cam_K.astype(np.float32))
    assert (back.num_views, back.num_frames, back.num_people) == (3, 5, 2)
    assert back.fps == pytest.approx(29.97) and back.view_names == ["cam0", "cam1", "cam2"]
    assert back.flat_hand_mean is False


def test_empty_scene_and_no_people_are_valid(tmp_path):
    take = make_take(P=0, N=0)
    write_take(tmp_path / "t.npz", take)
    back = read_take(tmp_path / "t.npz")
    assert back.num_people == 0 and back.points.shape == (0, 3)


def test_written_file_is_plain_npz_without_pickles(tmp_path):
    write_take(tmp_path / "t.npz", make_take())
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:
        for key in data.files:
            assert data[key].dtype != object
        meta = json.loads(str(data["meta"]))
    assert meta["format"] == "chromm.take" and meta["version"] == 1
    assert meta["units"] == "m" and meta["up"] == "+Z"
    assert meta["smplx"] == {"gender": "neutral", "num_betas": 10, "num_expression": 10,
                             "flat_hand_mean": False}


# ---------------------------------------------------------------- broken files

@pytest.mark.parametrize("key", REQUIRED + ["meta"])
def test_missing_key(tmp_path, key):
    arrays = arrays_of(make_take())
    del arrays[key]
    expect_error(save_raw(tmp_path / "t.npz", arrays), f"missing key '{key}'")


@pytest.mark.parametrize("key, shape, fragment", [
    ("cam_K", (2, 4, 3, 4), "expected (V, T, 3, 3)"),
    ("cam_c2w", (2, 4, 4), "expected 4 dimensions"),
    ("body_pose", (3, 4, 22, 3), "expected (P, T, 21, 3)"),
    ("left_hand_pose", (3, 4, 45), "expected 4 dimensions"),
    ("image_size", (2, 3), "expected (V, 2)"),
    ("points", (50, 4), "expected (N, 3)"),
    ("frame_times", (4, 1), "expected 1 dimensions"),
])
def test_wrong_shape(tmp_path, key, shape, fragment):
    arrays = arrays_of(make_take())
    arrays[key] = np.zeros(shape, arrays[key].dtype)
    expect_error(save_raw(tmp_path / "t.npz", arrays), f"key '{key}'", fragment)


@pytest.mark.parametrize("key, dtype, expected", [
    ("colors", np.float32, "uint8"),
    ("colors", np.int16, "uint8"),
    ("valid", np.int32, "bool"),
    ("person_ids", np.float32, "int32"),
    ("frame_times", np.int64, "float64"),
    ("transl", np.complex64, "float32"),
    ("betas", "U3", "float32"),
])
def test_wrong_dtype(tmp_path, key, dtype, expected):
    arrays = arrays_of(make_take())
    arrays[key] = np.zeros(arrays[key].shape, dtype)
    expect_error(save_raw(tmp_path / "t.npz", arrays), f"key '{key}' has dtype",
                 f"expected {expected}")


@pytest.mark.parametrize("key, value, fragment", [
    ("colors", np.full((50, 3), 300, np.uint16), "outside the range of uint8 [0, 255]"),
    ("person_ids", np.array([1, 2, 2**40], np.int64), "outside the range of int32"),
    ("point_frames", np.full(50, 2**31, np.uint32), "outside the range of int32"),
])
def test_integers_that_do_not_fit_are_refused(tmp_path, key, value, fragment):
    arrays = arrays_of(make_take())
    arrays[key] = value
    expect_error(save_raw(tmp_path / "t.npz", arrays), f"key '{key}' has values", fragment)


def test_meta_must_be_a_json_string(tmp_path):
    arrays = arrays_of(make_take())
    arrays["meta"] = np.zeros(3)
    expect_error(save_raw(tmp_path / "a.npz", arrays), "'meta' must be a 0-d string")
    arrays["meta"] = np.array("{not json")
    expect_error(save_raw(tmp_path / "b.npz", arrays), "'meta' is not valid JSON")
    arrays["meta"] = np.array("[1, 2]")
    expect_error(save_raw(tmp_path / "c.npz", arrays), "'meta' must be a JSON object")


@pytest.mark.parametrize("key, value", [
    ("transl", np.nan), ("cam_c2w", np.inf), ("cam_K", -np.inf), ("frame_times", np.nan),
    ("points", np.nan), ("betas", np.inf),
])
def test_nan_and_inf(tmp_path, key, value):
    arrays = arrays_of(make_take())
    a = arrays[key].copy()
    a.reshape(-1)[a.size // 2] = value
    arrays[key] = a
    expect_error(save_raw(tmp_path / "t.npz", arrays), f"key '{key}' contains NaN or infinite")


def test_values_that_overflow_float32_are_refused(tmp_path):
    arrays = arrays_of(make_take())
    arrays["transl"] = arrays["transl"].astype(np.float64)
    arrays["transl"][0, 0, 0] = 1e300
    expect_error(save_raw(tmp_path / "t.npz", arrays), "key 'transl' contains NaN or infinite")


@pytest.mark.parametrize("key, axis, dim", [
    ("expression", 1, "T"), ("cam_K", 1, "T"), ("valid", 1, "T"), ("body_pose", 1, "T"),
    ("valid", 0, "P"), ("betas", 0, "P"), ("transl", 0, "P"),
    ("cam_c2w", 0, "V"), ("colors", 0, "N"), ("point_frames", 0, "N"),
])
def test_dimension_mismatch_between_arrays(tmp_path, key, axis, dim):
    arrays = arrays_of(make_take())
    a = arrays[key]
    arrays[key] = np.concatenate([a, np.take(a, [0], axis=axis)], axis=axis)
    message = expect_error(save_raw(tmp_path / "t.npz", arrays), f"key '{key}' has {dim}=")
    assert "but '" in message and f"has {dim}=" in message.split("but")[1]


@pytest.mark.parametrize("fps", [0, -25.0, "25", None, float("nan"), True])
def test_non_positive_or_non_numeric_fps(tmp_path, fps):
    take = make_take()
    arrays = arrays_of(take)
    meta = dict(take.meta, fps=fps)
    if fps is None:
        del meta["fps"]
    arrays["meta"] = np.array(json.dumps(meta))
    expect_error(save_raw(tmp_path / "t.npz", arrays), "meta fps must be a positive number")


def test_pickled_objects_are_refused(tmp_path):
    arrays = arrays_of(make_take())
    arrays["person_ids"] = np.array([1, "two", None], dtype=object)
    expect_error(save_raw(tmp_path / "a.npz", arrays), "key 'person_ids' holds pickled objects")
    # Even under a key the reader does not know: it is never unpickled.
    arrays = arrays_of(make_take())
    arrays["extra_stuff"] = np.array([{"evil": True}], dtype=object)
    expect_error(save_raw(tmp_path / "b.npz", arrays), "key 'extra_stuff' holds pickled objects")


def test_truncated_file(tmp_path):
    path = tmp_path / "t.npz"
    write_take(path, make_take())
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 40):
        path.write_bytes(data[:cut])
        expect_error(path, "truncated or corrupt take file")


def test_corrupt_member_data(tmp_path):
    path = tmp_path / "t.npz"
    write_take(path, make_take())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("transl.npy")
    start = info.header_offset + 30 + len(info.filename) + 200  # inside the array's bytes
    data[start:start + 16] = bytes(16)
    path.write_bytes(bytes(data))
    expect_error(path, "truncated or corrupt take file")


@pytest.mark.parametrize("content", [b"hello, this is not a zip", b"", b"\x93NUMPY\x01\x00"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "t.npz"
    path.write_bytes(content)
    expect_error(path, "not a take file")


def test_missing_file_and_directory(tmp_path):
    expect_error(tmp_path / "nope.npz", "no such file")
    expect_error(tmp_path, "is a directory")


@pytest.mark.parametrize("field, value, fragment", [
    ("version", 2, "unsupported chromm.take version 2 (this reader knows 1)"),
    ("version", "1", "unsupported chromm.take version '1'"),
    ("version", None, "unsupported chromm.take version None"),
    ("format", "chromm.views", "meta format is 'chromm.views', expected 'chromm.take'"),
    ("format", None, "meta format is None"),
])
def test_format_and_version(tmp_path, field, value, fragment):
    take = make_take()
    arrays = arrays_of(take)
    meta = dict(take.meta, **{field: value})
    if value is None:
        del meta[field]
    arrays["meta"] = np.array(json.dumps(meta))
    expect_error(save_raw(tmp_path / "t.npz", arrays), fragment)


def test_a_views_file_is_not_a_take(tmp_path):
    from chromm_addon.io.views import write_views
    from test_views_io import make_views

    path = tmp_path / "v.npz"
    write_views(path, make_views())
    expect_error(path, "meta format is 'chromm.views', expected 'chromm.take'")


def test_duplicate_person_ids(tmp_path):
    arrays = arrays_of(make_take(P=3))
    arrays["person_ids"] = np.array([4, 9, 4], np.int32)
    expect_error(save_raw(tmp_path / "t.npz", arrays), "'person_ids' has duplicates")


@pytest.mark.parametrize("times", [[0.0, 0.1, 0.1, 0.2], [0.0, 0.2, 0.1, 0.3], [0.3, 0.2, 0.1, 0.0]])
def test_frame_times_must_increase(tmp_path, times):
    arrays = arrays_of(make_take(T=4))
    arrays["frame_times"] = np.array(times)
    expect_error(save_raw(tmp_path / "t.npz", arrays), "'frame_times' must increase strictly")


def test_other_consistency_rules(tmp_path):
    take = make_take(V=2, T=4)
    cases = [
        (dict(meta=dict(take.meta, views=["only one"])), "meta lists 1 views but the cameras have V=2"),
        (dict(meta={k: v for k, v in take.meta.items() if k != "views"}), "meta lacks 'views'"),
        (dict(meta={k: v for k, v in take.meta.items() if k != "smplx"}), "meta lacks 'smplx'"),
        (dict(meta=dict(take.meta, views="cam0,cam1")), "meta 'views' must be a list of view names"),
        (dict(meta=dict(take.meta, views=[0, 1])), "meta 'views' must be a list of view names"),
        (dict(meta=dict(take.meta, smplx=5)), "meta 'smplx' must be a JSON object"),
        (dict(meta=dict(take.meta, smplx=dict(take.meta["smplx"], flat_hand_mean="yes"))),
         "meta smplx flat_hand_mean must be true or false, got 'yes'"),
        (dict(meta=dict(take.meta, smplx=dict(take.meta["smplx"], num_betas=16))),
         "meta smplx num_betas=16 but 'betas' has B=10"),
        (dict(meta=dict(take.meta, smplx=dict(take.meta["smplx"], num_expression=50))),
         "meta smplx num_expression=50 but 'expression' has E=10"),
        (dict(meta=dict(take.meta, smplx={"num_betas": 10, "num_expression": 10})),
         "meta smplx lacks 'flat_hand_mean'"),
        (dict(image_size=np.array([[640, 0], [640, 480]], np.int32)), "'image_size' must be positive"),
        (dict(point_frames=np.full(50, 4, np.int32)), "'point_frames' must be -1 or a timestep in [0, 3]"),
        (dict(point_frames=np.full(50, -2, np.int32)), "'point_frames' must be -1"),
    ]
    for i, (change, fragment) in enumerate(cases):
        arrays = arrays_of(take)
        for key, value in change.items():
            arrays[key] = np.array(json.dumps(value)) if key == "meta" else value
        expect_error(save_raw(tmp_path / f"t{i}.npz", arrays), fragment)


def _set(a, index, value):
    a = a.copy()
    a[index] = value
    return a


@pytest.mark.parametrize("key, index, value, fragment", [
    ("cam_K", (1, 2, 0, 0), 0.0, "'cam_K' of view 1 at timestep 2 is not a pinhole matrix"),
    ("cam_K", (0, 3, 1, 1), 0.0, "'cam_K' of view 0 at timestep 3"),
    ("cam_K", (0, 0, 0, 1), 5.0, "'cam_K' of view 0 at timestep 0"),  # skew
    ("cam_K", (1, 0, 2, 2), 2.0, "'cam_K' of view 1 at timestep 0"),
    ("cam_c2w", (1, 1, 3, 3), 2.0, "'cam_c2w' of view 1 at timestep 1 is not a rigid transform"),
    ("cam_c2w", (0, 2, 0, 0), 1.1, "'cam_c2w' of view 0 at timestep 2"),  # scaled
    ("cam_c2w", (0, 1, 0, 0), -1.0, "'cam_c2w' of view 0 at timestep 1"),  # a mirror, det -1
])
def test_cameras_must_be_pinhole_and_rigid(tmp_path, key, index, value, fragment):
    arrays = arrays_of(make_take(V=2, T=4))
    arrays[key] = _set(arrays[key], index, value)
    expect_error(save_raw(tmp_path / "t.npz", arrays), fragment)


def test_rotated_cameras_are_accepted(tmp_path):
    from scipy.spatial.transform import Rotation

    take = make_take(V=2, T=4)
    take.cam_c2w[..., :3, :3] = Rotation.random(8, random_state=0).as_matrix().reshape(2, 4, 3, 3)
    write_take(tmp_path / "t.npz", take)
    assert np.array_equal(read_take(tmp_path / "t.npz").cam_c2w, take.cam_c2w)


def test_no_timesteps(tmp_path):
    take = make_take(T=1)
    arrays = arrays_of(take)
    for key in ("frame_times", "cam_K", "cam_c2w", "expression", "global_orient", "jaw_pose",
                "body_pose", "left_hand_pose", "right_hand_pose", "transl", "valid"):
        axis = 0 if key == "frame_times" else 1
        arrays[key] = np.take(arrays[key], [], axis=axis)
    arrays["point_frames"] = np.full(50, -1, np.int32)
    expect_error(save_raw(tmp_path / "t.npz", arrays), "the take has no timesteps")


# ---------------------------------------------------------------- writing

@pytest.mark.parametrize("breakage, fragment", [
    (lambda t: setattr(t, "transl", t.transl[:, :2]), "has T=2"),
    (lambda t: t.cam_K.__setitem__((0, 0, 0, 0), np.nan), "'cam_K' contains NaN"),
    (lambda t: t.meta.__setitem__("fps", 0), "meta fps must be a positive number"),
    (lambda t: t.meta.__setitem__("version", 3), "unsupported chromm.take version 3"),
    (lambda t: setattr(t, "person_ids", np.zeros(3, np.int32)), "'person_ids' has duplicates"),
    (lambda t: t.extra.__setitem__("bad", np.array([object()], dtype=object)), "cannot be written"),
    (lambda t: t.extra.__setitem__("valid", np.ones(3)), "extra key 'valid' clashes with a key"),
    (lambda t: t.extra.__setitem__("meta", np.ones(3)), "extra key 'meta' clashes with a key"),
])
def test_write_refuses_invalid_take_and_leaves_no_file(tmp_path, breakage, fragment):
    take = make_take()
    breakage(take)
    path = tmp_path / "out" / "take.npz"
    with pytest.raises(ChrommError) as info:
        write_take(path, take)
    assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value)
    assert not path.exists()
    assert not path.parent.exists() or os.listdir(path.parent) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path):
    path = tmp_path / "take.npz"
    good = make_take(seed=1)
    write_take(path, good)
    before = path.read_bytes()
    bad = make_take(seed=2)
    bad.valid = bad.valid[:1]
    with pytest.raises(ChrommError):
        write_take(path, bad)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["take.npz"]


def test_write_into_unwritable_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "take.npz"  # a folder that is a file
    with pytest.raises(ChrommError) as info:
        write_take(path, make_take())
    assert str(info.value).startswith(f"{path}: cannot write there (")
    folder = tmp_path / "a folder.npz"  # the target is an existing folder
    folder.mkdir()
    with pytest.raises(ChrommError) as info:
        write_take(folder, make_take())
    assert str(info.value).startswith(f"{folder}: cannot write there (")
    assert sorted(os.listdir(tmp_path)) == ["a folder.npz", "file"]
