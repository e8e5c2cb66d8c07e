"""Per-detection arrays of a views file, gathered once, with everything taken to the world frame."""

import dataclasses

import numpy as np

from ..geometry.rotations import axis_angle_to_matrix, axis_angle_to_quaternion, matrix_to_quaternion
from .body import DET_TO_JOINT


@dataclasses.dataclass
class Detections:
    """Kept detections (score at least the threshold); `index` points back into the views file.

    `rot` holds the rotations of SMPL-X joints 0..21 (root and body, all that FK of the head,
    pelvis and feet reads) as (D, 22, 3, 3) with the root in the camera frame, `quat` all 55
    joint rotations as unit quaternions (D, 55, 4), `cam_quat` the camera-to-world rotations (D, 4);
    `cam_rot`, `cam_pos` are each detection's camera-to-world rotation and centre, in the frame
    and scale the pipeline currently works in (they change with `scaled` and `transformed`).
    """

    index: np.ndarray
    view: np.ndarray
    time: np.ndarray
    score: np.ndarray
    head_2d: np.ndarray
    pelvis_2d: np.ndarray
    head_cam: np.ndarray
    rot: np.ndarray
    quat: np.ndarray
    betas: np.ndarray
    expression: np.ndarray
    cam_K: np.ndarray
    cam_rot: np.ndarray
    cam_pos: np.ndarray
    cam_quat: np.ndarray

    def __len__(self):
        return len(self.index)

    @property
    def head_world(self):
        return np.einsum("dij,dj->di", self.cam_rot, self.head_cam) + self.cam_pos

    def ray(self, pixels):
        """(D, 3) unit world directions from each camera centre through (D, 2) pixels."""
        pix = np.concatenate([pixels, np.ones((len(pixels), 1))], axis=1)
        ray = np.einsum("dij,dj->di", self.cam_rot, np.linalg.solve(self.cam_K, pix[..., None])[..., 0])
        return ray / np.linalg.norm(ray, axis=-1, keepdims=True)

    @property
    def head_ray(self):
        return self.ray(self.head_2d)

    @property
    def pelvis_ray(self):
        return self.ray(self.pelvis_2d)

    @property
    def root_world(self):
        return self.cam_rot @ self.rot[:, 0]

    def scaled(self, factor):
        """The same detections with the network's world (and camera-frame heads) scaled."""
        return dataclasses.replace(self, head_cam=self.head_cam * factor, cam_pos=self.cam_pos * factor)


def gather_detections(views, min_score=0.0):
    keep = np.flatnonzero(np.asarray(views.det_score) >= min_score)
    view = views.det_view[keep].astype(np.int64)
    time = views.det_time[keep].astype(np.int64)
    c2w = np.asarray(views.cam_c2w, dtype=np.float64)[view, time]
    rotvec = np.asarray(views.det_rotvec, dtype=np.float64)[keep]
    quat = np.zeros((len(keep), 55, 4))
    quat[..., 0] = 1.0
    quat[:, DET_TO_JOINT] = axis_angle_to_quaternion(rotvec)
    return Detections(
        index=keep, view=view, time=time,
        score=views.det_score[keep].astype(np.float64),
        head_2d=views.det_head_2d[keep].astype(np.float64),
        pelvis_2d=views.det_pelvis_2d[keep].astype(np.float64),
        head_cam=views.det_head_cam[keep].astype(np.float64),
        rot=axis_angle_to_matrix(rotvec[:, :22]), quat=quat,
        betas=views.det_betas[keep].astype(np.float64),
        expression=views.det_expression[keep].astype(np.float64),
        cam_K=np.asarray(views.cam_K, dtype=np.float64)[view, time],
        cam_rot=c2w[:, :3, :3], cam_pos=c2w[:, :3, 3], cam_quat=matrix_to_quaternion(c2w[:, :3, :3]))
