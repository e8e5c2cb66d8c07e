"""Lens undistortion of decoded frames, before the network (docs/cameras.md).

One `Undistorter` per clip computes OpenCV's remap tables once (cv2.initUndistortRectifyMap, or
cv2.fisheye.initUndistortRectifyMap) and remaps every decoded RGB frame with them (bilinear,
black outside the lens's image), keeping the frame size. The undistorted camera:

- OpenCV pinhole model: the same camera matrix K. The undistorted frame is then what Blender
  shows for the clip with its Brown-Conrady distortion model and "render undistorted", so the
  overlay in Blender lines up (k4..k6, OpenCV's rational terms, have no Blender equivalent).
- fisheye model: a pinhole matrix from cv2.fisheye.estimateNewCameraMatrixForUndistortRectify
  (balance 0: every output pixel sees the scene, same principal point), since a fisheye's field
  of view does not fit a pinhole image of the same focal length.

The take's intrinsics are the undistorted camera's (`Undistorter.K`).
"""

import numpy as np


class Undistorter:
    """Remaps (H, W, 3) uint8 frames of one clip from its lens to the pinhole camera `self.K`."""

    def __init__(self, K, model, dist, size):
        import cv2

        self.size = (int(size[0]), int(size[1]))
        K = np.asarray(K, dtype=np.float64)
        dist = np.asarray(dist, dtype=np.float64)
        self.source_K, self.model, self.dist = K, model, dist
        if model == "fisheye":
            self.K = cv2.fisheye.estimateNewCameraMatrixForUndistortRectify(
                K, dist.reshape(4, 1), self.size, np.eye(3), balance=0.0)
            self.maps = cv2.fisheye.initUndistortRectifyMap(
                K, dist.reshape(4, 1), np.eye(3), self.K, self.size, cv2.CV_16SC2)
        elif model == "pinhole":
            self.K = K.copy()
            self.maps = cv2.initUndistortRectifyMap(K, dist, None, self.K, self.size, cv2.CV_16SC2)
        else:
            raise ValueError(f"unknown distortion model {model!r}")

    def __call__(self, frame):
        import cv2

        if (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]}, the undistortion maps are {self.size}")
        return cv2.remap(frame, self.maps[0], self.maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def undistort_points(self, pixels):
        """Distorted pixel positions (N, 2) -> the same rays' pixels in the undistorted frame."""
        import cv2

        pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
        if self.model == "fisheye":
            out = cv2.fisheye.undistortPoints(pts, self.source_K, self.dist.reshape(4, 1), P=self.K)
        else:
            out = cv2.undistortPoints(pts, self.source_K, self.dist, P=self.K)
        return out.reshape(-1, 2)


def undistorters_for(cameras, sizes):
    """One Undistorter (or None: no distortion known) per clip, from KnownCamera entries."""
    return [Undistorter(cam.K, cam.model, cam.dist, size) if cam is not None and cam.distorted else None
            for cam, size in zip(cameras, sizes)]


def undistort_frames(frames, undistorters):
    """One decoded frame per clip -> the same list with known lenses undistorted."""
    return [f if u is None else u(f) for f, u in zip(frames, undistorters)]
