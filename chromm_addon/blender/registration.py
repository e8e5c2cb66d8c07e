"""Register the add-on's modules: each exports CLASSES and may define register_extra() and
unregister_extra() for what is not a class (menu entries, scene properties, timers)."""

import bpy


def register_modules(modules):
    for mod in modules:
        for cls in mod.CLASSES:
            bpy.utils.register_class(cls)
        if hasattr(mod, "register_extra"):
            mod.register_extra()


def unregister_modules(modules):
    for mod in reversed(modules):
        if hasattr(mod, "unregister_extra"):
            mod.unregister_extra()
        for cls in reversed(mod.CLASSES):
            bpy.utils.unregister_class(cls)
