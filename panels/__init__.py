"""Panels, UI lists, property groups and add-on preferences."""

from ..chromm_addon.blender.registration import register_modules, unregister_modules
from . import preferences, properties, reconstruct

MODULES = (preferences, properties, reconstruct)


def register():
    register_modules(MODULES)


def unregister():
    unregister_modules(MODULES)
