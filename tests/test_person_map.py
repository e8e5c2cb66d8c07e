"""The person map: names and identity fixes applied after fusion, all or nothing per edit."""

import numpy as np
import pytest

from chromm_addon.errors import ChrommError
from chromm_addon.evaluation.simulate import simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.fusion.person_map import (apply_edit, apply_person_map, check_person_map,
                                            people_summary)
from chromm_addon.fusion.pipeline import fuse_views
from chromm_addon.io.take import read_take, validate_take, write_take


@pytest.fixture(scope="module")
def fused():
    scene = make_scene(num_people=3, num_views=3, num_frames=60, seed=11)
    views = simulate_views(scene, "low", seed=11)
    return fuse_views(views), views


def test_swap_from_a_frame_exchanges_everything_after_it(fused):
    take, views = fused
    out, _ = apply_edit(take, {"op": "swap", "a": 0, "b": 2, "frame": 30}, views.det_time)
    validate_take(out)
    for key in ("transl", "body_pose", "valid", "foot_contact"):
        before, after = getattr(take, key), getattr(out, key)
        np.testing.assert_array_equal(after[0, :30], before[0, :30])
        np.testing.assert_array_equal(after[0, 30:], before[2, 30:])
        np.testing.assert_array_equal(after[2, 30:], before[0, 30:])
    np.testing.assert_array_equal(out.extra["person_head"][2, 30:], take.extra["person_head"][0, 30:])
    late = views.det_time >= 30
    det, new = take.extra["det_person"], out.extra["det_person"]
    assert np.all(new[late & (det == 0)] == 2) and np.all(new[~late] == det[~late])
    assert np.any(take.transl[0, 31] != out.transl[0, 31])  # the input take is left alone


def test_split_then_merge_restores_the_person(fused):
    take, views = fused
    split, new_id = apply_edit(take, {"op": "split", "person": 1, "frame": 25}, views.det_time)
    assert new_id == 3 and list(split.person_ids) == [0, 1, 2, 3]
    assert not split.valid[1, 25:].any() and not split.valid[3, :25].any()
    np.testing.assert_array_equal(split.valid[1] | split.valid[3], take.valid[1])
    merged, _ = apply_edit(split, {"op": "merge", "keep": 1, "other": 3}, views.det_time)
    assert list(merged.person_ids) == [0, 1, 2]
    for key in ("transl", "global_orient", "valid", "expression"):
        np.testing.assert_array_equal(getattr(merged, key), getattr(take, key))
    np.testing.assert_array_equal(merged.extra["det_person"], take.extra["det_person"])


def test_delete_and_people_summary(fused, tmp_path):
    take, views = fused
    out, problems = apply_person_map(take, {"names": {"0": "Ana", "2": "Ben"},
                                            "edits": [{"op": "delete", "person": 1}]}, views.det_time)
    assert problems == []
    assert list(out.person_ids) == [0, 2]
    assert np.all(out.extra["det_person"][take.extra["det_person"] == 1] == -1)
    back = read_take(write_take(tmp_path / "t.npz", out))
    summary = people_summary(back)
    assert [(pid, name) for pid, name, *_ in summary] == [(0, "Ana"), (2, "Ben")]
    assert all(frames > 0 and 1 <= views_seen <= 3 for *_, frames, views_seen in summary)
    assert back.meta["person_map"]["edits"] == [{"op": "delete", "person": 1}]


def test_edits_that_cannot_apply_are_reported_and_skipped(fused):
    take, views = fused
    pmap = {"names": {"7": "Gone", "0": "Ana", "1": "Ana"},
            "edits": [{"op": "swap", "a": 0, "b": 9, "frame": 10},
                      {"op": "merge", "keep": 0, "other": 1},
                      {"op": "split", "person": 2, "frame": 60},
                      {"op": "delete", "person": 2}]}
    out, problems = apply_person_map(take, pmap, views.det_time)
    assert problems == [
        "person map: swap 0 and 9 from frame 10: person 9 does not exist; skipped",
        f"person map: merge 1 into 0: people 0 and 1 are both seen at "
        f"{int((take.valid[0] & take.valid[1]).sum())} timesteps; skipped",
        "person map: split 2 at frame 60: frame 60 is outside 1..59; skipped",
        "person map: name 'Gone' is for person 7, who does not exist; left out",
        "person map: name 'Ana' is given to people 0 and 1; left out for 1",
    ]
    assert list(out.person_ids) == [0, 1]  # the delete applied, nothing else
    np.testing.assert_array_equal(out.transl, take.transl[:2])
    assert out.meta["person_map"]["names"] == {"0": "Ana"}


@pytest.mark.parametrize("bad, message", [
    ([], "must be an object"),
    ({"names": {}, "edits": [{"op": "rename"}]}, "edit 1 must be an object with 'op' one of"),
    ({"edits": [{"op": "swap", "a": 0, "b": 1}]}, "edit 1 (swap) needs integer a, b, frame"),
    ({"names": {"x": "A"}}, "names must map person ids to text"),
    ({"colours": {}}, "unknown key 'colours'"),
])
def test_malformed_maps_are_one_line_errors(bad, message):
    with pytest.raises(ChrommError, match="^person map: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        check_person_map(bad)
