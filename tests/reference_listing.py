"""Parse ../shared/reference/state-dict-keys.md (beside the repository) into {key: shape}.

Lines read `key [d0, d1]` or `key.#.rest [shape]  # a..b` (`#` = first numeric index, a..b its
range, a single number a literal index). Tests skip, with the reason, when the file is absent.
"""
import os
import re

LISTING = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "..", "shared", "reference", "state-dict-keys.md")
_LINE = re.compile(r"^(\S+) \[([0-9, ]*)\](?:\s+#\s*(\d+)(?:\.\.(\d+))?)?\s*$")


def load_listing(section_prefix):
    """{key: shape tuple} of the fenced listing under the `## <section_prefix>...` heading,
    or None when the reference file is not there."""
    if not os.path.exists(LISTING):
        return None
    with open(LISTING, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## " + section_prefix))
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    entries = {}
    for line in lines[fence + 1:]:
        if line.startswith("```"):
            break
        match = _LINE.match(line.strip())
        if match is None:
            raise ValueError(f"{LISTING}: cannot parse line {line!r}")
        key, dims, first, last = match.groups()
        shape = tuple(int(d) for d in dims.split(",") if d.strip())
        if first is None:
            entries[key] = shape
            continue
        indices = range(int(first), int(last if last is not None else first) + 1)
        for i in indices:
            entries[key.replace("#", str(i), 1)] = shape
    return entries


def subset(entries, prefix):
    """Entries under `prefix`, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in entries.items() if k.startswith(prefix)}
