"""Geometry in numpy: rotations, rigid and similarity transforms, camera conventions."""
