"""Operators: check the context, call chromm_addon, report. One module per concern."""

from ..chromm_addon.blender.registration import register_modules, unregister_modules
from . import cameras, export, import_take, overlay, people, reconstruct, setup, view_tools

MODULES = (import_take, view_tools, setup, reconstruct, people, export, cameras, overlay)


def register():
    register_modules(MODULES)


def unregister():
    unregister_modules(MODULES)
