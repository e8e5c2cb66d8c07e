"""A synthetic but structurally valid SMPLX_NEUTRAL.npz for tests (the real one is licensed).

The real 55-joint tree, 10475 vertices, 20908 faces. Vertex i belongs to joint i % 55 and sits
around it, J_regressor averages each joint's group, LBS weights are 0.8 own joint + 0.2 parent;
shape, expression and pose-corrective directions are small random values.
"""

import numpy as np

from chromm_addon.body.skeleton import NUM_JOINTS, PARENTS, approximate_rest_joints

NUM_VERTS, NUM_FACES = 10475, 20908


def make_synthetic_smplx(path, num_shape=10, num_expr=10, seed=0, posedirs_scale=1e-3,
                         hands_mean=True):
    rng = np.random.default_rng(seed)
    joints = approximate_rest_joints()
    group = np.arange(NUM_VERTS) % NUM_JOINTS
    v = joints[group] + rng.normal(scale=0.03, size=(NUM_VERTS, 3))
    for j in range(NUM_JOINTS):  # make each group's mean exactly its joint
        idx = group == j
        v[idx] += joints[j] - v[idx].mean(0)
    j_reg = np.zeros((NUM_JOINTS, NUM_VERTS))
    j_reg[group, np.arange(NUM_VERTS)] = 1.0
    j_reg /= j_reg.sum(1, keepdims=True)
    weights = np.zeros((NUM_VERTS, NUM_JOINTS))
    weights[np.arange(NUM_VERTS), group] = 0.8
    parent = np.where(PARENTS[group] < 0, group, PARENTS[group])
    weights[np.arange(NUM_VERTS), parent] += 0.2
    faces = np.empty((NUM_FACES, 3), dtype=np.uint32)
    members = [np.flatnonzero(group == j) for j in range(NUM_JOINTS)]
    for i in range(NUM_FACES):
        m = members[i % NUM_JOINTS]
        faces[i] = rng.choice(m, 3, replace=False)
    shapedirs = rng.normal(scale=0.01, size=(NUM_VERTS, 3, num_shape + num_expr))
    # As in the real model, expressions move the face but not the joints: zero mean per group.
    for j in range(NUM_JOINTS):
        idx = group == j
        shapedirs[idx, :, num_shape:] -= shapedirs[idx, :, num_shape:].mean(0)
    kintree = np.stack([PARENTS, np.arange(NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    kintree = kintree.astype(np.uint32)
    np.savez(
        path,
        v_template=v.astype(np.float32),
        f=faces,
        shapedirs=shapedirs.astype(np.float32),
        posedirs=(rng.normal(scale=posedirs_scale, size=(NUM_VERTS, 3, 486))).astype(np.float32),
        J_regressor=j_reg.astype(np.float32),
        weights=weights.astype(np.float32),
        kintree_table=kintree,
        hands_meanl=(rng.normal(scale=0.1, size=45) if hands_mean else np.zeros(45)).astype(np.float32),
        hands_meanr=(rng.normal(scale=0.1, size=45) if hands_mean else np.zeros(45)).astype(np.float32),
        hands_componentsl=np.eye(45, dtype=np.float32),
        hands_componentsr=np.eye(45, dtype=np.float32),
        lmk_faces_idx=np.arange(51, dtype=np.int64),
        lmk_bary_coords=np.full((51, 3), 1 / 3, dtype=np.float32),
        dynamic_lmk_faces_idx=np.zeros((79, 17), dtype=np.int64),
        dynamic_lmk_bary_coords=np.full((79, 17, 3), 1 / 3, dtype=np.float32),
    )
    return path
