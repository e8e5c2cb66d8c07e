"""File formats (no bpy, no torch): take files, views files, atomic writes."""
