"""CHROMM core: formats, body model, geometry, network, test-time modules, backend, builders.

Imports with neither bpy nor torch installed. Blender imports this package as a sub-package of the
extension, the backend as a top-level package, so everything inside uses relative imports.
"""

__version__ = "0.1.0"
