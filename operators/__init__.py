"""Operators: check the context, call chromm_addon, report. One module per concern."""

import bpy

from . import cameras, export, import_take, reconstruct, setup, view_tools

MODULES = (import_take, view_tools, setup, reconstruct, export, cameras)


def register():
    for mod in MODULES:
        for cls in mod.CLASSES:
            bpy.utils.register_class(cls)
        if hasattr(mod, "register_extra"):
            mod.register_extra()


def unregister():
    for mod in reversed(MODULES):
        if hasattr(mod, "unregister_extra"):
            mod.unregister_extra()
        for cls in reversed(mod.CLASSES):
            bpy.utils.unregister_class(cls)
