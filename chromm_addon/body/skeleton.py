"""The SMPL-X 55-joint skeleton: names, parents, and an approximate neutral rest skeleton."""

import numpy as np

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "jaw", "left_eye_smplhf", "right_eye_smplhf",
    *(f"left_{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)),
    *(f"right_{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)),
)

PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15, 20, 25,
     26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38, 21, 40, 41, 21, 43, 44, 21, 46, 47, 21,
     49, 50, 21, 52, 53],
    dtype=np.int64,
)

NUM_JOINTS = 55
PELVIS, HEAD = 0, 15

# Order of the 53 rotations after the root in a views file's `det_rotvec` and of the take's pose
# arrays: body 21 (joints 1..21), left hand 15 (25..39), right hand 15 (40..54), jaw (22).
BODY_JOINTS = np.arange(1, 22)
LEFT_HAND_JOINTS = np.arange(25, 40)
RIGHT_HAND_JOINTS = np.arange(40, 55)
JAW, LEFT_EYE, RIGHT_EYE = 22, 23, 24

# Approximate SMPL-X neutral rest joints (metres, SMPL-X's own frame: +Y up, +Z forward, the
# person's left on +X), used when no model file is configured. Values are rounded averages of
# a neutral adult body; fingers are laid out along the hands.
_BODY_REST = {
    "pelvis": (0.0, -0.35, 0.01), "left_hip": (0.06, -0.44, -0.01),
    "right_hip": (-0.06, -0.44, -0.01), "spine1": (0.0, -0.24, -0.02),
    "left_knee": (0.10, -0.82, 0.0), "right_knee": (-0.10, -0.82, 0.0),
    "spine2": (0.0, -0.11, 0.01), "left_ankle": (0.09, -1.22, -0.04),
    "right_ankle": (-0.09, -1.22, -0.04), "spine3": (0.0, -0.05, 0.01),
    "left_foot": (0.12, -1.28, 0.08), "right_foot": (-0.12, -1.28, 0.08),
    "neck": (0.0, 0.16, -0.02), "left_collar": (0.04, 0.07, -0.01),
    "right_collar": (-0.04, 0.07, -0.01), "head": (0.0, 0.25, 0.01),
    "left_shoulder": (0.17, 0.10, -0.02), "right_shoulder": (-0.17, 0.10, -0.02),
    "left_elbow": (0.43, 0.06, -0.04), "right_elbow": (-0.43, 0.06, -0.04),
    "left_wrist": (0.68, 0.07, -0.04), "right_wrist": (-0.68, 0.07, -0.04),
    "jaw": (0.0, 0.21, 0.03), "left_eye_smplhf": (0.03, 0.29, 0.09),
    "right_eye_smplhf": (-0.03, 0.29, 0.09),
}


def approximate_rest_joints():
    """(55, 3) float64 rest joints of a neutral body in SMPL-X's frame, without a model file."""
    joints = np.zeros((NUM_JOINTS, 3))
    for i, name in enumerate(JOINT_NAMES[:25]):
        joints[i] = _BODY_REST[name]
    # Fingers: three segments of 3, 2.5, 2 cm along +x (left) or -x (right) from the wrist,
    # spread in z; thumbs start forward of the wrist.
    spread = {"index": 0.025, "middle": 0.005, "pinky": -0.035, "ring": -0.015, "thumb": 0.04}
    for side, sign, wrist in (("left", 1.0, 20), ("right", -1.0, 21)):
        for finger, dz in spread.items():
            base = joints[wrist] + np.array([sign * (0.03 if finger == "thumb" else 0.09), -0.01, dz])
            for seg, length in enumerate((0.0, 0.03, 0.055)):
                name = f"{side}_{finger}{seg + 1}"
                joints[JOINT_NAMES.index(name)] = base + np.array([sign * length, 0.0, 0.0])
    return joints
