"""Known cameras in the pipeline: from the option to per-clip cameras, undistorters, and the
merged views moved into the user's frame (docs/cameras.md).

- `prepare(cameras_option, clips)`: read / check the camera document against the opened clips;
  returns a `KnownRig` (per clip: the camera after undistortion, the undistorter) and notes.
- `apply_to_views(views, rig)`: given poses fix the frame. The network's cameras of the posed
  views are fitted to the given ones by a Sim(3) (geometry.similarity.umeyama over camera
  centres and rotations, all timesteps), the whole views file is moved by it (so unposed views
  are estimated consistently with the posed ones), then the posed views' cameras are set to the
  given poses and every known view's intrinsics to the given (undistorted) ones exactly.
"""

import dataclasses

import numpy as np

from ..errors import ChrommError


@dataclasses.dataclass
class NetworkCamera:
    """What the network is told about one view: K of its (undistorted) frames, c2w; None if unknown."""

    K: np.ndarray = None
    c2w: np.ndarray = None


@dataclasses.dataclass
class KnownRig:
    cameras: list            # NetworkCamera or None per clip
    undistorters: list       # Undistorter or None per clip
    notes: list
    source: str = ""

    @property
    def any_pose(self):
        return any(c is not None and c.c2w is not None for c in self.cameras)

    @property
    def all_poses(self):
        return all(c is not None and c.c2w is not None for c in self.cameras)

    def meta(self):
        """What the take's meta records about the known cameras."""
        return {"source": self.source,
                "intrinsics": [c is not None and c.K is not None for c in self.cameras],
                "poses": [c is not None and c.c2w is not None for c in self.cameras],
                "undistorted": [u is not None for u in self.undistorters],
                "undistorted_K": [None if u is None else u.K.tolist() for u in self.undistorters],
                "distortion": [None if u is None else {"model": u.model, "coefficients": u.dist.tolist(),
                                                       "K": u.source_K.tolist()} for u in self.undistorters],
                "notes": list(self.notes)}


def load_document(option):
    """The --cameras option (a path, a list of paths, or a document dict) -> a document."""
    from ..io.cameras import check_document, read_camera_files

    if option is None:
        return None
    if isinstance(option, dict):
        return check_document(dict(option), "cameras")
    return read_camera_files(option)


def prepare(option, clips):
    """KnownRig for the opened clips, or None when no cameras are given."""
    from ..io.cameras import match_cameras
    from .undistort import undistorters_for

    doc = load_document(option)
    if doc is None:
        return None
    sizes = [(c.width, c.height) for c in clips]
    known, notes = match_cameras(doc, [c.name for c in clips], sizes)
    undistorters = undistorters_for(known, sizes)
    cameras = []
    for cam, und in zip(known, undistorters):
        if cam is None:
            cameras.append(None)
            continue
        cameras.append(NetworkCamera(K=None if cam.K is None else (und.K if und is not None else cam.K),
                                     c2w=cam.c2w))
    return KnownRig(cameras, undistorters, notes, str(doc.get("source", "cameras")))


def fit_to_known_poses(views, rig):
    """The Sim(3) taking the views' world to the user's, from the posed views' cameras."""
    from ..geometry.similarity import umeyama

    src, dst, src_r, dst_r = [], [], [], []
    for v, cam in enumerate(rig.cameras):
        if cam is None or cam.c2w is None:
            continue
        pred = np.asarray(views.cam_c2w[v], dtype=np.float64)            # (T, 4, 4)
        src.append(pred[:, :3, 3])
        dst.append(np.repeat(cam.c2w[None, :3, 3], len(pred), axis=0))
        src_r.append(pred[:, :3, :3])
        dst_r.append(np.repeat(cam.c2w[None, :3, :3], len(pred), axis=0))
    if not src:
        raise ChrommError("no known pose to fit")
    return umeyama(np.concatenate(src), np.concatenate(dst), src_rotations=np.concatenate(src_r),
                   dst_rotations=np.concatenate(dst_r))


def apply_to_views(views, rig):
    """Views moved into the frame of the given poses (if any), known cameras set exactly."""
    from .windows import transform_views

    if rig is None:
        return views
    if rig.any_pose:
        sim = fit_to_known_poses(views, rig)
        views = transform_views(views, sim)
        views.meta["known_frame"] = {"scale": float(sim.scale), "rotation": sim.rotation.tolist(),
                                     "translation": sim.translation.tolist()}
    cam_K = np.array(views.cam_K, dtype=np.float32)
    cam_c2w = np.array(views.cam_c2w, dtype=np.float32)
    for v, cam in enumerate(rig.cameras):
        if cam is None:
            continue
        if cam.K is not None:
            cam_K[v] = cam.K
        if cam.c2w is not None:
            cam_c2w[v] = cam.c2w
    views.cam_K, views.cam_c2w = cam_K, cam_c2w
    views.meta["known_cameras"] = rig.meta()
    return views
