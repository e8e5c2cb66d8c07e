"""People of a built take: list, rename, swap, merge, split, delete, and Refine (re-fuse the views
file with other options), each rebuilding the take in place with its person map.

The take file the collection was built from holds the person map (`fusion.person_map`); every
edit is appended to it, applied to the take, written back atomically and the collection rebuilt
under the same name. Refine runs the test-time modules on the stored views file (numpy only, no
network), applies the stored person map to the new result and rebuilds the same way. Operators
(`operators/people.py`) only call these functions.
"""

from ..errors import ChrommError
from ..fusion.person_map import apply_edit, apply_person_map, check_person_map
from ..io.take import read_take, write_take
from .props import FRAMES_PROP, NAME_PROP, PERSON_PROP, TAKE_PATH_PROP, VIEWS_PATH_PROP, VIEWS_PROP
from .render_setup import collection_sources
from .results import apply_take


def take_people(collection):
    """[(id, name, (r, g, b), frames seen, views seen)] of a built take, by id."""
    arms = sorted((o for o in collection.all_objects if o.type == "ARMATURE" and PERSON_PROP in o),
                  key=lambda o: o[PERSON_PROP])
    return [(int(o[PERSON_PROP]), str(o.get(NAME_PROP, f"person{o[PERSON_PROP]}")), tuple(o.color[:3]),
             int(o.get(FRAMES_PROP, 0)), int(o.get(VIEWS_PROP, 0))) for o in arms]


def _take_path(collection):
    path = collection.get(TAKE_PATH_PROP)
    if not path:
        raise ChrommError(f"{collection.name}: this take was not built from a take file the add-on knows")
    return path


def _det_time(collection):
    path = collection.get(VIEWS_PATH_PROP)
    if not path:
        return None
    from ..io.views import read_views

    return read_views(path).det_time


def _rebuild(scene, collection, take_path, smplx_path):
    return apply_take(scene, take_path, collection.name, smplx_path=smplx_path, replace=collection,
                      sources=collection_sources(collection) or None,
                      views_path=collection.get(VIEWS_PATH_PROP))


def edit_people(scene, collection, edit=None, rename=None, smplx_path=None):
    """Apply one edit ({"op": ...}, see fusion.person_map) or a rename ((id, name)); returns
    (new collection, summary). ChrommError (nothing changed) when it cannot apply."""
    path = _take_path(collection)
    take = read_take(path)
    pmap = check_person_map(take.meta.get("person_map"), f"{path}: person map")
    if edit is not None:
        edit = check_person_map({"edits": [edit]})["edits"][0]
        take, _ = apply_edit(take, edit, _det_time(collection))
        pmap["edits"].append(edit)
    if rename is not None:
        pid, name = int(rename[0]), str(rename[1]).strip()
        if pid not in [int(i) for i in take.person_ids]:
            raise ChrommError(f"person map: person {pid} does not exist")
        if not name:
            raise ChrommError("person map: a name cannot be empty")
        if any(n == name and int(k) != pid for k, n in pmap["names"].items()):
            raise ChrommError(f"person map: the name {name!r} is already taken")
        pmap["names"][str(pid)] = name
    take.meta = dict(take.meta, person_map=pmap)
    write_take(path, take)
    return _rebuild(scene, collection, path, smplx_path)


_SESSION = {}  # the last refined views file: its views, model and the fusion's cache


def _session(views_path, smplx_path):
    """Views, model and fusion cache of a views file, kept while the file and model are the same."""
    import os

    from ..body.model_file import configured_model, resolve_model_path
    from ..io.views import read_views

    model_path = resolve_model_path(smplx_path)
    key = (os.path.abspath(views_path), os.path.getmtime(views_path), model_path)
    if _SESSION.get("key") != key:
        _SESSION.clear()
        _SESSION.update(key=key, views=read_views(views_path), fuse={},
                        model=configured_model(model_path))
    return _SESSION


def refine(scene, collection, fuse_options, smplx_path=None):
    """Re-fuse the take's views file with `fuse_options`, apply its person map, rebuild in place.

    Only the steps whose options changed run again when the same views file was refined before
    in this session (`fuse_views`' cache). Returns (new collection, summary, problems: one line
    per person-map edit or name that no longer applies)."""
    import os

    from ..fusion.pipeline import fuse_views

    path = _take_path(collection)
    views_path = collection.get(VIEWS_PATH_PROP)
    if not views_path or not os.path.isfile(views_path):
        raise ChrommError(f"{views_path or collection.name}: no views file for this take, so it cannot be refined")
    old = read_take(path)
    session = _session(views_path, smplx_path)
    views = session["views"]
    take = fuse_views(views, session["model"], fuse_options, path=views_path, cache=session["fuse"])
    for key in ("sources", "name"):
        if key in old.meta:
            take.meta[key] = old.meta[key]
    options = dict(old.meta.get("options") or {})
    options.update(take.meta.get("options") or {})
    take.meta["options"] = options
    take, problems = apply_person_map(take, old.meta.get("person_map"), views.det_time)
    write_take(path, take)
    new, summary = _rebuild(scene, collection, path, smplx_path)
    return new, summary, problems
