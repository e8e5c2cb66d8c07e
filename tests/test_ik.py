"""Analytic two-bone leg IK: the ankle lands on the target, the foot takes the target
orientation, nothing but the leg changes (checked with the numpy forward pass, itself checked
against smplx in test_lbs)."""

import numpy as np

from chromm_addon.body.ik import LEGS, leg_reach, solve_leg
from chromm_addon.body.lbs import forward_kinematics
from chromm_addon.body.skeleton import approximate_rest_joints
from chromm_addon.geometry.rotations import axis_angle_to_matrix, rotation_angle


def test_leg_reaches_targets_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    rest = approximate_rest_joints()
    n = 200
    rot = axis_angle_to_matrix(rng.normal(scale=0.3, size=(n, 55, 3)))
    transl = rng.normal(size=(n, 3))
    g_rot, g_pos = forward_kinematics(rot, rest)
    for side in (0, 1):
        hip, knee, ankle, foot = LEGS[side]
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        target = g_pos[:, hip] + transl + direction * rng.uniform(0.3, 0.98, (n, 1)) * leg_reach(rest, side)
        foot_rot = axis_angle_to_matrix(rng.normal(scale=0.5, size=(n, 3)))
        out = solve_leg(rot, rest, transl, side, target, foot_rot)
        o_rot, o_pos = forward_kinematics(out, rest)
        np.testing.assert_allclose(o_pos[:, ankle] + transl, target, atol=1e-9)
        np.testing.assert_allclose(o_rot[:, ankle], foot_rot, atol=1e-9)
        # the knee is a hinge about its local x axis, bending forward
        assert np.allclose(out[:, knee, 0], [1, 0, 0]) and np.all(rotation_angle(out[:, knee]) < np.pi)
        # the knee points over the toes: its bend axis lies in the plane of the hip-ankle line
        # and the foot's lateral axis
        bend = o_rot[:, knee][:, :, 0]
        normal = np.cross(target - (o_pos[:, hip] + transl), foot_rot[:, :, 0])
        assert np.abs(np.sum(bend * normal, -1)).max() < 1e-9
        changed = [hip, knee, ankle]
        others = [j for j in range(55) if j not in changed]
        np.testing.assert_array_equal(out[:, others], rot[:, others])
        unmoved = [j for j in range(55) if j not in (knee, ankle, foot)]
        np.testing.assert_allclose(o_pos[:, unmoved], g_pos[:, unmoved], atol=1e-12)


def test_out_of_reach_targets_are_clamped_along_the_direction():
    rest = approximate_rest_joints()
    rot = np.broadcast_to(np.eye(3), (1, 55, 3, 3)).copy()
    g_rot, g_pos = forward_kinematics(rot, rest)
    hip = g_pos[0, 1]
    target = hip + np.array([[0.0, -3.0, 0.0]])
    out = solve_leg(rot, rest, np.zeros((1, 3)), 0, target, np.eye(3)[None])
    _, pos = forward_kinematics(out, rest)
    reached = pos[0, 7] - hip
    np.testing.assert_allclose(np.linalg.norm(reached), leg_reach(rest, 0), rtol=1e-6)
    np.testing.assert_allclose(reached / np.linalg.norm(reached), [0, -1, 0], atol=1e-6)
