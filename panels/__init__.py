"""Panels, UI lists, property groups and add-on preferences."""

import bpy

from . import preferences

MODULES = (preferences,)


def register():
    for mod in MODULES:
        for cls in mod.CLASSES:
            bpy.utils.register_class(cls)


def unregister():
    for mod in reversed(MODULES):
        for cls in reversed(mod.CLASSES):
            bpy.utils.unregister_class(cls)
