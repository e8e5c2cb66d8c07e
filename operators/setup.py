"""The preferences' "Check" button."""

import bpy

class CHROMM_OT_check_setup(bpy.types.Operator):
    """Check the backend, the network weights and the SMPL-X model file, and say how to fix each"""

    bl_idname = "chromm.check_setup"
    bl_label = "Check"

    def execute(self, context):
        from ..chromm_addon.client.setup_check import check_setup
        from ..panels.preferences import get_preferences

        prefs = get_preferences(context)
        findings = check_setup(prefs.backend_mode, bpy.path.abspath(prefs.backend_env),
                               bpy.path.abspath(prefs.weights_dir),
                               bpy.path.abspath(prefs.smplx_model), prefs.remote_url,
                               prefs.remote_token)
        for f in findings:
            self.report({"INFO"} if f.ok else {"WARNING"},
                        f.what + ("" if f.ok or not f.fix else f" — {f.fix}"))
        return {"FINISHED"}


CLASSES = (CHROMM_OT_check_setup,)
