"""The take's collection and the bookkeeping that lets a build be removed exactly.

Every data-block a build creates carries the custom property `chromm_build` (one id per build),
so `remove_build` deletes exactly those and nothing a user or another build made.
"""

import uuid

import bpy

from .props import BUILD_PROP

# bpy.data collections a build may create data-blocks in, removal order (users before data).
_DATA = ("objects", "collections", "meshes", "armatures", "cameras", "lights", "actions",
         "node_groups", "materials", "worlds")


class Build:
    """Creates tagged data-blocks for one build and links objects into its collection."""

    def __init__(self, name, scene):
        self.id = uuid.uuid4().hex
        self.scene = scene
        self.collection = self.tag(bpy.data.collections.new(name))
        scene.collection.children.link(self.collection)

    def tag(self, id_block):
        id_block[BUILD_PROP] = self.id
        return id_block

    def new_object(self, name, data, collection=None):
        if data is not None:
            self.tag(data)
        obj = self.tag(bpy.data.objects.new(name, data))
        (collection or self.collection).objects.link(obj)
        return obj

    def new_collection(self, name):
        child = self.tag(bpy.data.collections.new(name))
        self.collection.children.link(child)
        return child

    def remove(self):
        remove_build(self.id)


def remove_build(build_id):
    """Delete every data-block tagged with `build_id`."""
    for attr in _DATA:
        blocks = getattr(bpy.data, attr)
        doomed = [b for b in blocks if b.get(BUILD_PROP) == build_id]
        for block in doomed:
            blocks.remove(block)


def remove_take(collection):
    """Remove a built take: its collection, objects and the data they were built with."""
    build_id = collection.get(BUILD_PROP)
    if build_id is None:
        raise ValueError(f"collection {collection.name!r} was not made by the CHROMM builder")
    remove_build(build_id)
