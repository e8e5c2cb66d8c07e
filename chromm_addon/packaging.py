"""Build the extension zip: `python -m chromm_addon.packaging --out dist` (what `make zip` runs).

Uses the extension tool that ships inside the `bpy` wheel
(`bpy/<X.Y>/scripts/addons_core/bl_pkg/cli/blender_ext.py`), the same code as
`blender --command extension validate|build`, run in a subprocess: bpy itself is never imported
here. Tags are checked against Blender's own list, as the Blender command does by default.
"""

import argparse
import dataclasses
import glob
import importlib.util
import os
import subprocess
import sys
import tomllib

from .errors import ChrommError

MANIFEST = "blender_manifest.toml"
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class ExtensionTool:
    """Paths of Blender's extension tool and its list of valid tags inside one bpy install."""

    script: str
    tags: str
    blender_version: str


def find_extension_tool():
    """Locate blender_ext.py in the installed bpy package without importing bpy."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise ChrommError(f"bpy: module not installed in {sys.executable}; packaging uses the "
                          "extension tool inside the bpy wheel (run `make venv`, or "
                          "`pip install bpy==5.0.1` under Python 3.11)")
    found = []
    for root in spec.submodule_search_locations:
        pattern = os.path.join(root, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")
        for script in glob.glob(pattern):
            version = os.path.relpath(script, root).split(os.sep)[0]
            found.append((_version_key(version), version, script))
    if not found:
        raise ChrommError(f"{spec.submodule_search_locations[0]}: bpy install has no "
                          "scripts/addons_core/bl_pkg/cli/blender_ext.py")
    _, version, script = max(found)
    scripts = script.split(os.sep + "addons_core" + os.sep)[0]
    tags = os.path.join(scripts, "modules", "_bpy_internal", "extensions", "tags.py")
    return ExtensionTool(script=script, tags=tags if os.path.isfile(tags) else "",
                         blender_version=version)


def _version_key(text):
    return tuple(int(p) if p.isdigit() else -1 for p in text.split("."))


def read_manifest(source_dir):
    """The parsed blender_manifest.toml of a source folder."""
    path = os.path.join(source_dir, MANIFEST)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ChrommError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChrommError(f"{path}: invalid TOML ({exc})") from None


def _run_tool(tool, args, subject):
    tags = ["--valid-tags", tool.tags] if tool.tags else []
    proc = subprocess.run([sys.executable, tool.script, *args, *tags], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
        problems = [ln for ln in lines if not ln.startswith(("building:", "Success"))]
        raise ChrommError(f"{subject}: " + ("; ".join(problems) or f"exit status {proc.returncode}"))
    return proc.stdout


def validate(path, tool=None):
    """Run the manifest validator on a source folder or a built zip; ChrommError on failure."""
    tool = tool or find_extension_tool()
    path = os.path.abspath(path)
    subject = os.path.join(path, MANIFEST) if os.path.isdir(path) else path
    _run_tool(tool, ["validate", path], subject)


def build_zip(out_dir, source_dir=SOURCE_DIR, tool=None):
    """Validate the source, build `<out_dir>/<id>-<version>.zip`, validate the zip; its path."""
    tool = tool or find_extension_tool()
    source_dir = os.path.abspath(source_dir)
    out_dir = os.path.abspath(out_dir)
    manifest = read_manifest(source_dir)
    validate(source_dir, tool)
    os.makedirs(out_dir, exist_ok=True)
    zip_path = os.path.join(out_dir, f"{manifest['id']}-{manifest['version']}.zip")
    # The tool writes a temporary file beside the target and renames it: no partial zip.
    _run_tool(tool, ["build", "--source-dir", source_dir, "--output-filepath", zip_path],
              os.path.join(source_dir, MANIFEST))
    validate(zip_path, tool)
    return zip_path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m chromm_addon.packaging",
                                     description="validate the manifest and build the extension zip")
    parser.add_argument("--out", default="dist", help="output folder (default: dist)")
    parser.add_argument("--source", default=SOURCE_DIR, help="extension source folder")
    args = parser.parse_args(argv)
    try:
        zip_path = build_zip(args.out, args.source)
    except ChrommError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
