"""The CHROMM network in PyTorch: DINOv2, Pi3X, Multi-HMR and the CHROMM heads.

torch is imported by the modules of this package, never by this file, so `chromm_addon` imports
without torch installed.
"""
