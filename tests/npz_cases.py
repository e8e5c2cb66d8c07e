"""Crafting broken .npz files by hand and checking the one-line error a reader gives."""

import json

import numpy as np
import pytest

from chromm_addon.errors import ChrommError


def arrays_of(record, keys):
    """The dict np.savez would get from a writer, for crafting broken files by hand."""
    out = {k: getattr(record, k) for k in keys if getattr(record, k) is not None}
    out["meta"] = np.array(json.dumps(record.meta))
    return out


def save_raw(path, arrays):
    np.savez(path, **arrays)
    return str(path)


def expect_error(reader, path, *fragments):
    """`reader(path)` fails with one line that names the file and holds every fragment."""
    with pytest.raises(ChrommError) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message
