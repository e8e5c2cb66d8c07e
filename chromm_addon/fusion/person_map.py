"""The person map: an animator's names and identity fixes, stored in the take, applied after fusion.

`take.meta["person_map"]` is a JSON object

    {"names": {"0": "Alice", "3": "Bob"},
     "edits": [{"op": "swap", "a": 0, "b": 1, "frame": 120},
               {"op": "merge", "keep": 0, "other": 3},
               {"op": "split", "person": 2, "frame": 200},
               {"op": "delete", "person": 5}]}

People are named by their `person_ids` (stable within one fusion result); frames are timesteps.
Edits apply in order, each to the result of the ones before:

- `swap`: from `frame` on, people a and b exchange everything (the fix for an identity switch);
- `merge`: `other`'s timesteps join `keep` (the fix for one person split in two tracks); refused
  when both are seen at a same timestep;
- `split`: from `frame` on, `person` becomes a new person (id: one above the largest);
- `delete`: the person is removed (a ghost).

An edit that cannot apply (a person that does not exist, for example after a re-fuse with other
options; a frame out of range; a merge of people seen together) is skipped with one line saying
why, and leaves the take as it was: nothing is half-applied. Names follow ids; a name for an id
that does not exist, or a name given twice, is reported and left out.
"""

import colorsys
import copy

import numpy as np

from ..errors import ChrommError

OPS = {"swap": ("a", "b", "frame"), "merge": ("keep", "other"), "split": ("person", "frame"),
       "delete": ("person",)}
PERSON_EXTRA = ("person_head",)  # (P, T, ...) arrays of the take's extra that follow the people


def empty_person_map():
    return {"names": {}, "edits": []}


def person_colour(person_id):
    """A distinct sRGB colour (r, g, b in 0..1) of a person id, the same in every panel, build and
    overlay, and after other people are deleted: golden-ratio hues."""
    hue = (0.58 + 0.618034 * int(person_id)) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.65, 0.95)


def check_person_map(data, source="person map"):
    """A person map from JSON-like data, normalised; ChrommError (one line) when malformed."""
    if data is None:
        return empty_person_map()
    if not isinstance(data, dict):
        raise ChrommError(f"{source}: must be an object with 'names' and 'edits'")
    unknown = set(data) - {"names", "edits"}
    if unknown:
        raise ChrommError(f"{source}: unknown key {sorted(unknown)[0]!r}")
    names = data.get("names") or {}
    if not isinstance(names, dict):
        raise ChrommError(f"{source}: 'names' must map person ids to names")
    out = {"names": {}, "edits": []}
    for key, name in names.items():
        if not str(key).lstrip("-").isdigit() or not isinstance(name, str):
            raise ChrommError(f"{source}: names must map person ids to text, got {key!r}: {name!r}")
        out["names"][str(int(key))] = name
    edits = data.get("edits") or []
    if not isinstance(edits, list):
        raise ChrommError(f"{source}: 'edits' must be a list")
    for i, edit in enumerate(edits):
        if not isinstance(edit, dict) or edit.get("op") not in OPS:
            raise ChrommError(f"{source}: edit {i + 1} must be an object with 'op' one of {', '.join(OPS)}")
        fields = OPS[edit["op"]]
        if set(edit) - {"op", *fields} or any(not _is_int(edit.get(f)) for f in fields):
            raise ChrommError(f"{source}: edit {i + 1} ({edit['op']}) needs integer {', '.join(fields)}")
        out["edits"].append({"op": edit["op"], **{f: int(edit[f]) for f in fields}})
    return out


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def describe(edit):
    op = edit["op"]
    if op == "swap":
        return f"swap {edit['a']} and {edit['b']} from frame {edit['frame']}"
    if op == "merge":
        return f"merge {edit['other']} into {edit['keep']}"
    if op == "split":
        return f"split {edit['person']} at frame {edit['frame']}"
    return f"delete {edit['person']}"


class _People:
    """The per-person arrays of a take, edited together (and copied, so an edit is all or nothing)."""

    def __init__(self, take, det_time=None):
        self.ids = [int(i) for i in take.person_ids]
        self.betas = np.array(take.betas)
        self.timed = {k: np.array(getattr(take, k)) for k in
                      ("expression", "global_orient", "jaw_pose", "body_pose", "left_hand_pose",
                       "right_hand_pose", "transl", "valid")}
        if take.foot_contact is not None:
            self.timed["foot_contact"] = np.array(take.foot_contact)
        for key in PERSON_EXTRA:
            if key in take.extra:
                self.timed["extra:" + key] = np.array(take.extra[key])
        det = take.extra.get("det_person")
        self.det_person = None if det is None else np.array(det)
        self.det_time = None if det_time is None else np.asarray(det_time)
        self.views = None if "person_views" not in take.extra else np.array(take.extra["person_views"])

    @property
    def frames(self):
        return self.timed["valid"].shape[1]

    def index(self, pid, edit):
        if pid not in self.ids:
            raise _Skip(f"person {pid} does not exist")
        return self.ids.index(pid)

    def _det(self, fn):
        """Remap det_person with fn(det_person, det_time) or drop it when times are unknown."""
        if self.det_person is None:
            return
        if self.det_time is None:
            self.det_person = None  # cannot follow a timed edit without the detections' times
            return
        self.det_person = fn(self.det_person.copy(), self.det_time)

    def swap(self, a, b, frame):
        self._check_frame(frame)
        for arr in self.timed.values():
            arr[[a, b], frame:] = arr[[b, a], frame:]

        def fn(det, t):
            late = t >= frame
            sa, sb = late & (det == a), late & (det == b)
            det[sa], det[sb] = b, a
            return det
        self._det(fn)

    def merge(self, keep, other):
        valid = self.timed["valid"]
        both = int(np.count_nonzero(valid[keep] & valid[other]))
        if both:
            raise _Skip(f"people {self.ids[keep]} and {self.ids[other]} are both seen at {both} timesteps")
        take_other = valid[other].copy()
        for arr in self.timed.values():
            arr[keep][take_other] = arr[other][take_other]
        n_keep, n_other = valid[keep].sum(), take_other.sum()
        self.betas[keep] = (self.betas[keep] * n_keep + self.betas[other] * n_other) / max(n_keep + n_other, 1)
        if self.views is not None:
            self.views[keep] = max(self.views[keep], self.views[other])
        if self.det_person is not None:
            self.det_person[self.det_person == other] = keep
        self._remove(other)

    def split(self, p, frame):
        self._check_frame(frame, first=1)
        new_id = max(self.ids) + 1
        for key, arr in self.timed.items():
            piece = arr[p:p + 1].copy()
            if key == "valid":
                piece[:, :frame] = False
                arr[p, frame:] = False
            self.timed[key] = np.concatenate([arr, piece])
        self.timed["valid"][-1, :frame] = False
        if "foot_contact" in self.timed:
            self.timed["foot_contact"] &= self.timed["valid"][..., None]
        self.betas = np.concatenate([self.betas, self.betas[p:p + 1]])
        if self.views is not None:
            self.views = np.concatenate([self.views, self.views[p:p + 1]])
        self.ids.append(new_id)
        new_index = len(self.ids) - 1

        def fn(det, t):
            det[(det == p) & (t >= frame)] = new_index
            return det
        self._det(fn)
        return new_id

    def delete(self, p):
        if self.det_person is not None:
            self.det_person[self.det_person == p] = -1
        self._remove(p)

    def _remove(self, p):
        keep = [i for i in range(len(self.ids)) if i != p]
        for key in self.timed:
            self.timed[key] = self.timed[key][keep]
        self.betas = self.betas[keep]
        if self.views is not None:
            self.views = self.views[keep]
        del self.ids[p]
        if self.det_person is not None:
            det = self.det_person
            self.det_person = np.where(det > p, det - 1, det)

    def _check_frame(self, frame, first=0):
        if not first <= frame < self.frames:
            raise _Skip(f"frame {frame} is outside {first}..{self.frames - 1}")

    def write(self, take):
        take.person_ids = np.asarray(self.ids, dtype=np.int32)
        take.betas = self.betas.astype(np.float32)
        for key, arr in self.timed.items():
            if key.startswith("extra:"):
                take.extra[key[6:]] = arr
            else:
                setattr(take, key, arr)
        if self.det_person is None:
            take.extra.pop("det_person", None)
        else:
            take.extra["det_person"] = self.det_person.astype(np.int32)
        if self.views is not None:
            take.extra["person_views"] = self.views.astype(np.int32)


class _Skip(Exception):
    pass


def apply_edit(take, edit, det_time=None):
    """The take with one edit applied (a copy), or ChrommError naming why it cannot apply.

    Returns (take, new person id or None)."""
    out = copy.copy(take)
    out.extra = dict(take.extra)
    people = _People(take, det_time)
    op = edit["op"]
    try:
        new_id = None
        if op == "swap":
            a, b = people.index(edit["a"], edit), people.index(edit["b"], edit)
            if a == b:
                raise _Skip("a person cannot swap with itself")
            people.swap(a, b, edit["frame"])
        elif op == "merge":
            keep, other = people.index(edit["keep"], edit), people.index(edit["other"], edit)
            if keep == other:
                raise _Skip("a person cannot merge with itself")
            people.merge(keep, other)
        elif op == "split":
            new_id = people.split(people.index(edit["person"], edit), edit["frame"])
        else:
            people.delete(people.index(edit["person"], edit))
    except _Skip as exc:
        raise ChrommError(f"person map: {describe(edit)}: {exc}; skipped") from None
    people.write(out)
    return out, new_id


def apply_person_map(take, person_map, det_time=None):
    """Apply a person map's edits and names to a (freshly fused) take.

    Returns (take with `meta["person_map"]` set to the map, list of one-line problems: edits and
    names that could not apply, skipped)."""
    pmap = check_person_map(person_map)
    problems = []
    for edit in pmap["edits"]:
        try:
            take, _ = apply_edit(take, edit, det_time)
        except ChrommError as exc:
            problems.append(str(exc))
    ids = {int(i) for i in take.person_ids}
    seen = {}
    names = {}
    for key, name in pmap["names"].items():
        if int(key) not in ids:
            problems.append(f"person map: name {name!r} is for person {key}, who does not exist; left out")
        elif not name.strip():
            problems.append(f"person map: person {key} has an empty name; left out")
        elif name in seen:
            problems.append(f"person map: name {name!r} is given to people {seen[name]} and {key}; "
                            f"left out for {key}")
        else:
            seen[name] = key
            names[key] = name
    take.meta = dict(take.meta, person_map={"names": names, "edits": pmap["edits"]})
    return take, problems


def person_name(take, index):
    """Display name of the person at array index `index`: its mapped name or `person<ID>`."""
    pid = int(take.person_ids[index])
    names = (take.meta.get("person_map") or {}).get("names") or {}
    return names.get(str(pid)) or f"person{pid}"


def people_summary(take):
    """[(id, name, colour, frames seen, views seen)] of a take's people."""
    views = take.extra.get("person_views")
    return [(int(pid), person_name(take, i), person_colour(pid), int(take.valid[i].sum()),
             int(views[i]) if views is not None else 0) for i, pid in enumerate(take.person_ids)]
