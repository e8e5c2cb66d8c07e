"""Panels, UI lists, property groups and add-on preferences."""

import bpy

from . import preferences, properties, reconstruct

MODULES = (preferences, properties, reconstruct)


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
