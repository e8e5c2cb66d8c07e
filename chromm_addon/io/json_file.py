"""Small JSON side files (stamps, caches, download records) that may be missing or damaged."""

import json


def read_json_dict(path):
    """The JSON object in `path`, or {} when the file is missing, unreadable or not an object:
    such files only save work, so a bad one means starting afresh, never an error."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
