"""People of a built take in real bpy: list, rename (into object and export names), swap, split,
merge, delete, and Refine keeping names and edits; bad edits change nothing."""

import numpy as np
import pytest

from chromm_addon.errors import ChrommError
from chromm_addon.evaluation.simulate import simulate_views
from chromm_addon.evaluation.synthetic import make_scene
from chromm_addon.fusion.pipeline import FuseOptions, fuse_views
from chromm_addon.io.take import read_take, write_take
from chromm_addon.io.views import write_views

pytestmark = pytest.mark.blender


@pytest.fixture
def built(tmp_path):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    from chromm_addon.blender.results import apply_take

    scene = make_scene(num_people=3, num_views=3, num_frames=45, seed=12)
    views = simulate_views(scene, "low", seed=12)
    views_path = write_views(tmp_path / "views.npz", views)
    take_path = write_take(tmp_path / "take.npz", fuse_views(views))
    collection, _ = apply_take(bpy.context.scene, str(take_path), "shot", views_path=str(views_path))
    return bpy, collection, str(take_path)


def _arms(collection):
    return {o["chromm_person"]: o for o in collection.all_objects if o.type == "ARMATURE"}


def test_people_are_listed_renamed_and_exported_by_name(built, tmp_path):
    bpy, collection, take_path = built
    from chromm_addon.blender.exporters import export_people, take_people as exportable
    from chromm_addon.blender.people_edits import edit_people, take_people

    people = take_people(collection)
    assert [p[0] for p in people] == [0, 1, 2]
    assert all(p[1] == f"person{p[0]}" and p[3] > 0 and 1 <= p[4] <= 3 for p in people)
    assert len({p[2] for p in people}) == 3  # a colour each
    collection, _ = edit_people(bpy.context.scene, collection, rename=(1, "Ana"))
    assert collection.name == "shot"
    assert _arms(collection)[1].name == "shot.Ana" and take_people(collection)[1][1] == "Ana"
    assert read_take(take_path).meta["person_map"]["names"] == {"1": "Ana"}
    written = export_people(exportable(collection), tmp_path / "out.bvh", fmt="BVH")
    assert sorted(p.rsplit("/", 1)[-1] for p in written) == ["out_Ana.bvh", "out_person0.bvh", "out_person2.bvh"]
    with pytest.raises(ChrommError, match="name 'Ana' is already taken"):
        edit_people(bpy.context.scene, collection, rename=(0, "Ana"))


def test_swap_split_merge_delete_rebuild_in_place(built):
    bpy, collection, take_path = built
    from chromm_addon.blender.people_edits import edit_people

    before = read_take(take_path)
    scene = bpy.context.scene
    collection, _ = edit_people(scene, collection, edit={"op": "swap", "a": 0, "b": 2, "frame": 20})
    take = read_take(take_path)
    np.testing.assert_array_equal(take.transl[0, 20:], before.transl[2, 20:])
    # the rebuilt armature 0 is where person 2 was from frame 20 on
    arm = _arms(collection)[0]
    scene.frame_set(scene.frame_start + 30)
    bpy.context.view_layer.update()
    loc = np.array(arm.matrix_world @ arm.pose.bones["pelvis"].head)
    from chromm_addon.evaluation.evaluate import take_joints

    np.testing.assert_allclose(loc, take_joints(before)[2, 30, 0], atol=1e-4)
    collection, _ = edit_people(scene, collection, edit={"op": "split", "person": 1, "frame": 25})
    assert sorted(_arms(collection)) == [0, 1, 2, 3]
    collection, _ = edit_people(scene, collection, edit={"op": "merge", "keep": 1, "other": 3})
    collection, _ = edit_people(scene, collection, edit={"op": "delete", "person": 2})
    assert sorted(_arms(collection)) == [0, 1]
    assert [e["op"] for e in read_take(take_path).meta["person_map"]["edits"]] == ["swap", "split", "merge",
                                                                                 "delete"]
    names = {c.name for c in bpy.data.collections}
    assert "shot" in names and not any(n.startswith("shot.") for n in names)
    # an edit naming someone who is gone changes nothing
    stamp = read_take(take_path).transl.copy()
    with pytest.raises(ChrommError, match="person map: delete 2: person 2 does not exist; skipped"):
        edit_people(scene, collection, edit={"op": "delete", "person": 2})
    np.testing.assert_array_equal(read_take(take_path).transl, stamp)


def test_refine_keeps_names_and_edits(built):
    bpy, collection, take_path = built
    from chromm_addon.blender.people_edits import edit_people, refine, take_people

    scene = bpy.context.scene
    collection, _ = edit_people(scene, collection, rename=(0, "Ana"))
    collection, _ = edit_people(scene, collection, edit={"op": "delete", "person": 2})
    smoother = FuseOptions(smooth_window_s=0.8, foot_lock=False)
    collection, summary, problems = refine(scene, collection, smoother)
    assert problems == [] and "2 people" in summary
    assert [p[:2] for p in take_people(collection)] == [(0, "Ana"), (1, "person1")]
    take = read_take(take_path)
    assert take.meta["options"]["fuse"]["smooth_window_s"] == 0.8 and take.foot_contact is None \
        or not take.foot_contact.any()
    assert take.meta["person_map"]["edits"] == [{"op": "delete", "person": 2}]
