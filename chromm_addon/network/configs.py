"""Named configurations of the network's parts: one lookup for every table (stdlib only)."""

import dataclasses


def named_config(table, name, what, **overrides):
    """A fresh copy of configuration `name` of `table` (dataclasses or dicts of constructor
    arguments), with `overrides`; KeyError naming the known ones for an unknown name."""
    if name not in table:
        raise KeyError(f"unknown {what} configuration {name!r}; known: {', '.join(sorted(table))}")
    config = table[name]
    if dataclasses.is_dataclass(config):
        return dataclasses.replace(config, **overrides)
    return dict(config, **overrides)
