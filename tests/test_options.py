"""The options schema: JSON round trip, validation, and every option reachable from the command
line and the service (the add-on's side is in test_addon_ui.py)."""

import dataclasses
import json

import pytest

from chromm_addon.cli import build_parser
from chromm_addon.errors import ChrommError
from chromm_addon.options import (INPUT, JOB, SERVICE, FuseOptions, ReconstructOptions, from_dict, leaves,
                                  read_config, to_dict)


def _subparser(name):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices[name]


def _dests(parser):
    return {a.dest for a in parser._actions}


def test_every_option_has_help_unit_range_and_a_unique_key():
    all_leaves = leaves(ReconstructOptions)
    assert len({leaf.key for leaf in all_leaves}) == len(all_leaves)
    for leaf in all_leaves:
        m = leaf.meta
        assert m["help"] and m["scope"] in (JOB, SERVICE, INPUT), leaf.key
        if leaf.type in (int, float) and leaf.key not in ("start", "end"):  # any time on the timeline
            assert m["min"] is not None or m["max"] is not None, f"{leaf.key}: no range"
        if leaf.optional:
            assert m["auto"], f"{leaf.key}: what None means is not said"
        if leaf.default is not None and not isinstance(leaf.default, list):
            leaf.set(ReconstructOptions(), leaf.default)
    from_dict(ReconstructOptions, {})  # the defaults validate


def test_every_option_is_reachable_from_the_cli_and_the_service():
    reconstruct, fuse, serve = _subparser("reconstruct"), _subparser("fuse"), _subparser("serve")
    from chromm_addon.backend.models import JobOptions, PathJob

    for leaf in leaves(ReconstructOptions):
        if leaf.meta["scope"] == INPUT:
            assert "clips" in _dests(reconstruct) and "clips" in PathJob.model_fields
            continue
        assert leaf.key in _dests(reconstruct), f"reconstruct has no flag for {leaf.key}"
        if leaf.meta["scope"] == SERVICE:
            assert leaf.key in _dests(serve), f"serve has no flag for {leaf.key}"
            continue
        model = JobOptions
        for name in leaf.path[:-1]:
            model = model.model_fields[name].annotation.__args__[0]  # Optional[sub-model]
        assert leaf.path[-1] in model.model_fields, f"the service's JobOptions lack {'.'.join(leaf.path)}"
    for leaf in leaves(FuseOptions):
        assert leaf.key in _dests(fuse), f"fuse has no flag for {leaf.key}"


def test_json_round_trip_and_one_line_errors(tmp_path):
    options = ReconstructOptions(clips=["a.mp4"], fps=12.5)
    options.fuse.tracking.gate_m = 0.7
    options.fuse.smooth = True
    text = json.dumps(to_dict(options))
    back = from_dict(ReconstructOptions, json.loads(text))
    assert back == options and dataclasses.asdict(back) == dataclasses.asdict(options)
    with pytest.raises(ChrommError, match=r"^cfg: unknown option 'fuse.trakcing' \(known here: .*tracking"):
        from_dict(ReconstructOptions, {"fuse": {"trakcing": {}}}, "cfg")
    with pytest.raises(ChrommError, match=r"^cfg: tracking_gate_m -1: out of range \(> 0 m\)$"):
        from_dict(ReconstructOptions, {"fuse": {"tracking": {"gate_m": -1}}}, "cfg")
    with pytest.raises(ChrommError, match=r"^cfg: smooth: expected true or false"):
        from_dict(FuseOptions, {"smooth": "yes"}, "cfg")
    with pytest.raises(ChrommError, match=r"^cfg: device 'tpu': expected auto, cpu or cuda$"):
        from_dict(ReconstructOptions, {"device": "tpu"}, "cfg")
    assert from_dict(ReconstructOptions, {"device": "cuda:1"}).device == "cuda:1"
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ChrommError, match=r"bad.json: not valid JSON"):
        read_config(FuseOptions, str(bad))


def test_the_service_model_takes_a_config_file_body():
    from pydantic import ValidationError

    from chromm_addon.backend.models import JobOptions

    body = JobOptions.model_validate({"fps": 10, "fuse": {"association": {"head_gate_m": 0.4}}})
    assert body.fuse.association.head_gate_m == 0.4
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"fuse": {"nonsense": 1}})
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"fuse": {"min_score": 2}})
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"device": "cpu"})  # the service's own option, not a job's
