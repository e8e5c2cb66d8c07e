"""The extension package: manifest validation, the built zip's contents, and a real install.

The validator and builder are the ones inside the bpy wheel (chromm_addon.packaging). The install
test runs in a fresh Python process with a temporary Blender user folder (BLENDER_USER_RESOURCES),
installs the zip as the Extensions preferences do, and enables and disables it twice.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from chromm_addon.errors import ChrommError
from chromm_addon.io.take import Take, make_meta, write_take
from chromm_addon import packaging

ROOT = packaging.SOURCE_DIR
MODULE = "bl_ext.user_default.chromm"
needs_bpy = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                               reason="the bpy module (with Blender's extension tool) is not installed")


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory):
    return packaging.build_zip(tmp_path_factory.mktemp("dist"))


@needs_bpy
def test_manifest_validates_with_blender_tool():
    tool = packaging.find_extension_tool()
    assert os.path.isfile(tool.script) and tool.script.endswith("blender_ext.py")
    assert tool.tags.endswith("tags.py")
    packaging.validate(ROOT, tool)
    manifest = packaging.read_manifest(ROOT)
    assert manifest["id"] == "chromm"
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert "files" in manifest["permissions"]
    assert "network" in manifest["permissions"]  # Install Backend, Download Weights, Remote mode
    assert manifest["blender_version_min"] == "4.2.0"
    # 5.0.x must be inside [min, max): max is exclusive.
    assert tuple(map(int, manifest["blender_version_max"].split("."))) > (5, 0, 99)


@needs_bpy
def test_zip_holds_the_extension_and_no_dev_files(extension_zip):
    assert os.path.basename(extension_zip) == "chromm-0.1.0.zip"
    names = zipfile.ZipFile(extension_zip).namelist()
    top = {n.split("/")[0] for n in names}
    for wanted in ("__init__.py", "blender_manifest.toml", "chromm_addon", "operators", "panels"):
        assert wanted in top, wanted
    assert "chromm_addon/io/take.py" in names
    assert "vendor/requirements-backend.txt" in names  # what Install Backend installs
    for unwanted in ("tests", "docs", "benchmarks", "Makefile", "requirements.txt", ".venv", ".ci",
                     ".git", "dist"):
        assert unwanted not in top, unwanted
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # The zip itself passes the validator (build_zip checks it too; this is the test's own check).
    packaging.validate(extension_zip)


def _copy_source(dst):
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(
        ".venv", ".git", "tests", "docs", "benchmarks", "__pycache__", "dist", "demo_out"))
    return dst


@needs_bpy
@pytest.mark.parametrize("edit, problem", [
    (('tags = [', 'tags = ["Machine Learning", '), "Machine Learning"),
    (('tagline = "', 'tagline = "' + "x" * 70), "tagline"),
    (('id = "chromm"', 'id = "not valid"'), "id"),
])
def test_invalid_manifest_is_refused_with_its_reason(tmp_path, edit, problem):
    src = _copy_source(tmp_path / "src")
    manifest = src / "blender_manifest.toml"
    text = manifest.read_text()
    assert edit[0] in text
    manifest.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ChrommError) as info:
        packaging.build_zip(tmp_path / "out", src)
    message = str(info.value)
    assert str(manifest) in message and problem in message and "\n" not in message
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


@needs_bpy
def test_make_zip_command_line(tmp_path):
    out = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "chromm_addon.packaging", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out / "chromm-0.1.0.zip")
    assert zipfile.is_zipfile(out / "chromm-0.1.0.zip")


def test_packaging_without_bpy_says_so(tmp_path):
    # -S: no site-packages, so bpy cannot be found (the stdlib and the repo still are).
    proc = subprocess.run([sys.executable, "-S", "-m", "chromm_addon.packaging", "--out",
                           str(tmp_path / "dist")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: bpy: module not installed")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "dist").exists()


def _small_take(path):
    """2 views, 3 timesteps, 1 person, 5 points."""
    V, T, P, N = 2, 3, 1, 5
    rng = np.random.default_rng(1)
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]], np.float32)
    c2w = np.tile(np.eye(4, dtype=np.float32), (V, T, 1, 1))
    c2w[:, :, :3, 3] = [0.0, -4.0, 1.5]
    take = Take(
        meta=make_meta(25.0, ["left", "right"], 10, 10),
        frame_times=np.arange(T) / 25.0,
        image_size=np.array([[640, 480], [720, 1280]], np.int32),
        cam_K=np.tile(K, (V, T, 1, 1)), cam_c2w=c2w,
        points=rng.normal(size=(N, 3)).astype(np.float32),
        colors=rng.integers(0, 255, (N, 3)).astype(np.uint8),
        person_ids=np.array([7], np.int32),
        betas=np.zeros((P, 10), np.float32), expression=np.zeros((P, T, 10), np.float32),
        global_orient=np.zeros((P, T, 3), np.float32), jaw_pose=np.zeros((P, T, 3), np.float32),
        body_pose=np.zeros((P, T, 21, 3), np.float32),
        left_hand_pose=np.zeros((P, T, 15, 3), np.float32),
        right_hand_pose=np.zeros((P, T, 15, 3), np.float32),
        transl=np.zeros((P, T, 3), np.float32), valid=np.ones((P, T), bool))
    write_take(path, take)
    return take


# Runs in a fresh interpreter: everything Blender keeps per user goes to the temporary folder.
INSTALL_SCRIPT = r'''
import json, os, sys
import bpy, addon_utils

zip_path, take_path, module = sys.argv[1:4]
errors = []
out = {"extensions_dir": bpy.utils.user_resource("EXTENSIONS")}
types_before = set(dir(bpy.types))


ext_classes = set()


def leftovers():
    """Registered classes and menu entries of the extension that are still there."""
    for name, mod in list(sys.modules.items()):
        if name.startswith(module + "."):
            ext_classes.update(getattr(mod, "CLASSES", ()))
    addon = bpy.context.preferences.addons.get(module)
    classes = sorted(set(dir(bpy.types)) - types_before)
    menus = sorted(f"{name}:{f.__name__}" for name in dir(bpy.types)
                   for f in getattr(getattr(getattr(bpy.types, name), "draw", None), "_draw_funcs", ())
                   if getattr(f, "__module__", "").startswith(module))
    return {"classes": classes, "menus": menus,
            "registered": sorted(c.__name__ for c in ext_classes if c.is_registered),
            "prefs_type": type(addon.preferences).__name__ if addon and addon.preferences else None,
            "enabled": module in bpy.context.preferences.addons,
            "has_import_op": hasattr(bpy.types, "IMPORT_SCENE_OT_chromm_take"),
            "has_view_op": hasattr(bpy.types, "CHROMM_OT_set_view_resolution")}


def use_operators(round_):
    """Import the take, then set the resolution from its second camera."""
    before = set(bpy.data.collections.keys())
    res = bpy.ops.import_scene.chromm_take(filepath=take_path)
    new = sorted(set(bpy.data.collections.keys()) - before)
    top = [c for c in new if c in bpy.context.scene.collection.children]
    cams = sorted((o for c in new for o in bpy.data.collections[c].all_objects
                   if o.type == "CAMERA"), key=lambda o: o["chromm_view"])
    people = [o for c in new for o in bpy.data.collections[c].all_objects if "chromm_person" in o]
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 10, 10
    scene.camera = cams[1]
    bpy.context.view_layer.objects.active = cams[1]
    res2 = bpy.ops.chromm.set_view_resolution()
    return {"import": sorted(res), "collections": len(top), "cameras": len(cams),
            "person_ids": sorted({int(o["chromm_person"]) for o in people}),
            "set_resolution": sorted(res2),
            "resolution": [scene.render.resolution_x, scene.render.resolution_y],
            "fps": scene.render.fps / scene.render.fps_base}


res = bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo="user_default", enable_on_install=True)
out["install"] = sorted(res)
out["installed_files"] = sorted(os.listdir(os.path.join(out["extensions_dir"], "user_default", "chromm")))
out["after_install"] = leftovers()
out["module_file"] = sys.modules[module].__file__
out["round1"] = use_operators(1)
addon_utils.disable(module, default_set=True, handle_error=lambda ex: errors.append(repr(ex)))
out["after_disable1"] = leftovers()
mod = addon_utils.enable(module, default_set=True, handle_error=lambda ex: errors.append(repr(ex)))
out["reenabled"] = mod is not None
out["after_enable2"] = leftovers()
out["round2"] = use_operators(2)
addon_utils.disable(module, default_set=True, handle_error=lambda ex: errors.append(repr(ex)))
out["after_disable2"] = leftovers()
out["errors"] = errors
print("RESULT " + json.dumps(out))
'''


@needs_bpy
@pytest.mark.blender
def test_install_enable_use_disable_twice_in_fresh_bpy(extension_zip, tmp_path):
    take_path = tmp_path / "small take.npz"
    _small_take(take_path)
    user = tmp_path / "blender-user"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDER_")}
    env.update(BLENDER_USER_RESOURCES=str(user), HOME=str(tmp_path / "home"),
               PYTHONPATH="", PYTHONNOUSERSITE="1")
    script = tmp_path / "install_session.py"
    script.write_text(INSTALL_SCRIPT)
    # Run outside the repo so that only the installed copy can be imported.
    proc = subprocess.run([sys.executable, str(script), extension_zip, str(take_path), MODULE],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])

    assert out["errors"] == []
    assert out["extensions_dir"].startswith(str(user))
    assert out["module_file"].startswith(str(user))
    assert out["install"] == ["FINISHED"]
    assert {"__init__.py", "blender_manifest.toml", "chromm_addon"} <= set(out["installed_files"])
    assert "tests" not in out["installed_files"]

    enabled = out["after_install"]
    assert enabled["enabled"] and enabled["has_import_op"] and enabled["has_view_op"], enabled
    assert enabled["prefs_type"] == "CHROMM_AP_preferences"
    assert {"CHROMM_AP_preferences", "IMPORT_SCENE_OT_chromm_take",
            "CHROMM_OT_set_view_resolution"} <= set(enabled["registered"])
    assert "TOPBAR_MT_file_import:" in " ".join(enabled["menus"])
    assert out["reenabled"] and out["after_enable2"] == enabled

    for round_, collections in (("round1", 1), ("round2", 1)):
        used = out[round_]
        assert used["import"] == ["FINISHED"] and used["collections"] == collections
        assert used["cameras"] == 2 and used["person_ids"] == [7]
        assert used["set_resolution"] == ["FINISHED"]
        assert used["resolution"] == [720, 1280]
        assert used["fps"] == pytest.approx(25.0)

    for key in ("after_disable1", "after_disable2"):
        gone = out[key]
        assert gone["classes"] == [] and gone["menus"] == [] and gone["registered"] == [], (key, gone)
        assert gone["prefs_type"] is None
        assert not (gone["enabled"] or gone["has_import_op"] or gone["has_view_op"]), (key, gone)
