"""What a lens costs the geometry, and what giving its distortion buys back (docs/cameras.md).

The project's synthetic scene (evaluation.synthetic.make_scene: people walking, a ring of cameras)
is imaged through three lenses per camera, with the scene's own camera matrix K:
  pinhole        no distortion (the reference)
  wide-angle     OpenCV pinhole model, k1 = -0.25, k2 = 0.07 (a representative barrel lens)
  fisheye        OpenCV fisheye model with k1..k4 = 0: the ideal equidistant fisheye r = f * theta
Every joint's pixel (plus 1 px Gaussian noise) is then read three ways:
  pinhole        the pinhole pixels, K
  given          the lens's pixels undistorted with the given lens (backend/undistort.py), its K
  ignored        the lens's pixels taken for a pinhole camera, the best pinhole K fitted to the
                 lens's ray field (what a network assuming pinhole cameras can at best estimate)
and triangulated from all views that see the joint (known extrinsics, linear least squares).
Printed: the 3D joint error (mm, median and 95th percentile) and the ray angle error (degrees).

    .venv/bin/python benchmarks/bench_lens.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chromm_addon.backend.undistort import Undistorter  # noqa: E402
from chromm_addon.evaluation.synthetic import make_scene  # noqa: E402

LENSES = {
    "wide-angle (k1 -0.25, k2 0.07)": ("pinhole", np.array([-0.25, 0.07, 0.0, 0.0, 0.0])),
    "fisheye (equidistant)": ("fisheye", np.zeros(4)),
}


def distort(model, dist, K, X_cam):
    import cv2

    pts = X_cam.reshape(-1, 1, 3)
    if model == "fisheye":
        return cv2.fisheye.projectPoints(pts, np.zeros(3), np.zeros(3), K, dist.reshape(4, 1))[0].reshape(-1, 2)
    return cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, dist)[0].reshape(-1, 2)


def pinhole_fit(model, dist, K, size):
    """The pinhole K (principal point at the centre) that best explains the lens's rays."""
    import cv2

    w, h = size
    v, u = np.mgrid[0:h:8, 0:w:8].astype(np.float64)
    pix = np.stack([u, v], -1).reshape(-1, 1, 2)
    if model == "fisheye":
        rays = cv2.fisheye.undistortPoints(pix, K, dist.reshape(4, 1)).reshape(-1, 2)
    else:
        rays = cv2.undistortPoints(pix, K, dist).reshape(-1, 2)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    du, dv = pix[:, 0, 0] - cx, pix[:, 0, 1] - cy
    fx = (rays[:, 0] * du).sum() / (rays[:, 0] ** 2).sum()
    fy = (rays[:, 1] * dv).sum() / (rays[:, 1] ** 2).sum()
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])


def triangulate(obs):
    """obs: list of (K, w2c (3x4), pixel) -> least-squares 3D point (DLT)."""
    rows = []
    for K, P, uv in obs:
        M = K @ P
        rows.append(uv[0] * M[2] - M[0])
        rows.append(uv[1] * M[2] - M[1])
    _, _, vt = np.linalg.svd(np.array(rows))
    X = vt[-1]
    return X[:3] / X[3]


def ray_angle(K1, uv1, K2, uv2):
    r1 = np.linalg.solve(K1, np.append(uv1, 1.0))
    r2 = np.linalg.solve(K2, np.append(uv2, 1.0))
    c = r1 @ r2 / np.linalg.norm(r1) / np.linalg.norm(r2)
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def main(num_frames=30, noise_px=1.0, seed=0):
    scene = make_scene(num_people=4, num_views=4, num_frames=num_frames, seed=seed, image_size=(1280, 720))
    joints = scene.joints()[:, :, :22]                                   # body joints
    rng = np.random.default_rng(seed)
    print(f"scene: {scene.num_people} people, {scene.num_views} views 1280x720, {num_frames} frames; "
          f"pixel noise {noise_px} px; body joints triangulated from every view that sees them")
    print(f"{'lens':32s} {'read as':10s} {'3D error median':>16s} {'p95':>8s} {'ray error median':>17s} {'max':>7s}")
    for lens, (model, dist) in LENSES.items():
        setup = []
        for v in range(scene.num_views):
            K = scene.cam_K[v, 0].astype(np.float64)
            size = tuple(int(s) for s in scene.image_size[v])
            setup.append((K, size, Undistorter(K, model, dist, size), pinhole_fit(model, dist, K, size)))
        errors = {"pinhole": [], "given": [], "ignored": []}
        angles = {"pinhole": [], "given": [], "ignored": []}
        for p in range(scene.num_people):
            for t in range(num_frames):
                if not scene.valid[p, t]:
                    continue
                for X in joints[p, t]:
                    obs = {k: [] for k in errors}
                    for v in range(scene.num_views):
                        K, size, und, K_fit = setup[v]
                        w2c = np.linalg.inv(scene.cam_c2w[v, t])[:3]
                        Xc = w2c @ np.append(X, 1.0)
                        if Xc[2] < 0.3:
                            continue
                        pin = (K @ Xc)[:2] / Xc[2]
                        lensed = distort(model, dist, K, Xc[None])[0]
                        if not (0 <= lensed[0] < size[0] and 0 <= lensed[1] < size[1]):
                            continue
                        n = rng.normal(0, noise_px, 2)
                        und_uv = und.undistort_points((lensed + n)[None])[0]
                        obs["pinhole"].append((K, w2c, pin + n))
                        obs["given"].append((und.K, w2c, und_uv))
                        obs["ignored"].append((K_fit, w2c, lensed + n))
                        true_uv = (und.K @ Xc)[:2] / Xc[2]
                        angles["pinhole"].append(ray_angle(K, pin + n, K, pin))
                        angles["given"].append(ray_angle(und.K, und_uv, und.K, true_uv))
                        angles["ignored"].append(ray_angle(K_fit, lensed + n, und.K, true_uv))
                    if len(obs["pinhole"]) < 2:
                        continue
                    for k in errors:
                        errors[k].append(np.linalg.norm(triangulate(obs[k]) - X))
        for k in errors:
            e = np.array(errors[k]) * 1000
            a = np.array(angles[k])
            print(f"{lens:32s} {k:10s} {np.median(e):13.1f} mm {np.percentile(e, 95):5.1f} mm "
                  f"{np.median(a):14.3f} deg {a.max():6.2f}")


if __name__ == "__main__":
    main()
