"""The SMPL-X body model in numpy: joint tree, model files, forward kinematics and skinning."""
