import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "blender: needs the bpy module")


@pytest.fixture(scope="session")
def smplx_model_path(tmp_path_factory):
    """A synthetic SMPLX_NEUTRAL.npz, made once per test session."""
    from smplx_synth import make_synthetic_smplx

    path = tmp_path_factory.mktemp("smplx") / "SMPLX_NEUTRAL.npz"
    return str(make_synthetic_smplx(path))
