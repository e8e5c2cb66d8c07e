"""The docs stay true to the code and inside the repository: every command is in the
architecture page's contract 4, every link between pages resolves, nothing points outside."""

import os
import re

from chromm_addon.cli import COMMANDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
PAGES = [os.path.join(DOCS, n) for n in sorted(os.listdir(DOCS)) if n.endswith(".md")] + \
    [os.path.join(ROOT, "README.md")]
OUTSIDE = "../" + "shared"  # the reference folder beside a clone (spelled so this file does not match)


def _read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def test_every_command_is_in_contract_4():
    text = _read(os.path.join(DOCS, "architecture.md"))
    contract = text[text.index("## Contract 4"):]
    contract = contract[:contract.index("\n## ", 1)]
    missing = [name for name, _, _ in COMMANDS if not re.search(r"`" + name + r"[ `]", contract)]
    assert not missing, f"commands missing from contract 4 of docs/architecture.md: {missing}"


def test_links_between_pages_resolve_and_stay_inside():
    for page in PAGES:
        text = _read(page)
        assert OUTSIDE not in text, f"{page}: points outside the repository"
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert os.path.exists(os.path.join(os.path.dirname(page), target)), f"{page}: {target}"


def test_the_options_page_is_the_schema():
    from chromm_addon.options import markdown_table

    assert markdown_table() in _read(os.path.join(DOCS, "options.md")), \
        "docs/options.md is out of date: rerun `python -m chromm_addon.options` into it"


def test_nothing_points_outside_the_repository():
    """What a clone needs is inside it: no code, test or page reads or cites the folder beside it."""
    for top in ("chromm_addon", "operators", "panels", "tests", "benchmarks", "docs"):
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith((".py", ".md")):
                    path = os.path.join(folder, name)
                    assert OUTSIDE not in _read(path), f"{path}: points outside the repository"
