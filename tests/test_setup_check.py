"""The preferences' Check: each finding says what is there, or what is missing and the fix."""

import os
import sys

from chromm_addon.client.setup_check import check_setup

VENV = os.path.dirname(os.path.dirname(sys.executable))


def test_local_backend_without_weights_says_where_they_go(tmp_path, smplx_model_path):
    findings = check_setup("LOCAL", VENV, str(tmp_path / "weights"), smplx_model_path)
    by_ok = {f.what.split(":")[0]: f for f in findings}
    assert by_ok["backend environment"].ok
    weights = by_ok["network weights"]
    assert not weights.ok and "weights" in weights.what and "weights check" in weights.fix
    smplx = by_ok["SMPL-X model file"]
    assert smplx.ok and "10475 vertices" in smplx.what


def test_missing_pieces_each_get_a_fix(tmp_path):
    (env,) = [f for f in check_setup("LOCAL", str(tmp_path / "nope"), "", "") if "environment" in f.what]
    assert not env.ok and "make venv" in env.fix
    findings = check_setup("LOCAL", "", "", str(tmp_path / "SMPLX_NEUTRAL.npz"))
    assert not findings[-1].ok and "not found" in findings[-1].what and findings[-1].fix
    (remote, smplx) = check_setup("REMOTE", url="http://127.0.0.1:9", token="t" * 32)
    assert not remote.ok and "unreachable" in remote.what and "serve" in remote.fix
    assert not smplx.ok and "mannequins" in smplx.what
