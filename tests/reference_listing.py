"""Parse tests/data/state-dict-keys.md (the upstream classes' state-dict keys and shapes, listed
from the official code with random weights) into {key: shape}.

Lines read `key [d0, d1]` or `key.#.rest [shape]  # a..b` (`#` = first numeric index, a..b its
range, a single number a literal index). The file is part of the repository: a test that needs
it fails, never skips, when it is missing.
"""
import os
import re

LISTING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "state-dict-keys.md")
_LINE = re.compile(r"^(\S+) \[([0-9, ]*)\](?:\s+#\s*(\d+)(?:\.\.(\d+))?)?\s*$")


def entries(section_prefix):
    """[(key pattern, shape tuple, (first, last) index range or None)] of the fenced listing under
    the `## <section_prefix>...` heading, `#` left in the keys (a pattern may recur with other
    ranges)."""
    with open(LISTING, encoding="utf-8") as f:  # FileNotFoundError names the missing file
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## " + section_prefix))
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    out = []
    for line in lines[fence + 1:]:
        if line.startswith("```"):
            break
        match = _LINE.match(line.strip())
        if match is None:
            raise ValueError(f"{LISTING}: cannot parse line {line!r}")
        key, dims, first, last = match.groups()
        shape = tuple(int(d) for d in dims.split(",") if d.strip())
        rng = None if first is None else (int(first), int(last if last is not None else first))
        out.append((key, shape, rng))
    return out


def load_patterns(section_prefix):
    """{key pattern: (shape, range)} of a section whose patterns do not recur (Pi3X)."""
    found = entries(section_prefix)
    patterns = {key: (shape, rng) for key, shape, rng in found}
    assert len(patterns) == len(found), f"{LISTING}: a pattern of {section_prefix} recurs"
    return patterns


def load_listing(section_prefix):
    """{key: shape tuple} of a section, every `#` pattern expanded over its range."""
    expanded = {}
    for key, shape, rng in entries(section_prefix):
        for i in ([None] if rng is None else range(rng[0], rng[1] + 1)):
            expanded[key if i is None else key.replace("#", str(i), 1)] = shape
    return expanded


def subset(entries, prefix):
    """Entries under `prefix`, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in entries.items() if k.startswith(prefix)}
