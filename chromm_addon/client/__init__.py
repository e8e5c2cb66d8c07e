"""The add-on's side of the backend: HTTP client, the local service process, and the job state
machine. Standard library only (it runs in Blender's Python), no bpy: tested without a UI."""
