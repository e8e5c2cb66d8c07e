"""The scene builder: a take file into Blender (contract 2). The only bpy code in chromm_addon."""
