"""People: an SMPL-X armature per person and a skinned body: the SMPL-X mesh (shape keys keyed per
timestep) with a model file, else a procedural mannequin.

Bone orientation (docs/scene-builder.md): the rest skeleton is the person's SMPL-X rest joints
turned upright by UPRIGHT (SMPL-X's +Y up -> Blender's +Z up, (x, y, z) -> (x, -z, y)), and every
bone points along +Z with roll 0. Such a bone's local axes are exactly SMPL-X's axes, so each
joint's SMPL-X rotation is its pose-bone quaternion unchanged. Only the root differs: the take's
global_orient and transl are already in the Z-up world, so the pelvis carries UPRIGHT^-1 R0 (the
body's rotation away from its upright rest) and the translation that puts the pelvis where the
smplx forward pass puts it.
"""

import bpy
import numpy as np

from ..body.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS, approximate_rest_joints
from ..fusion.person_map import people_summary, person_colour
from ..geometry.rotations import (axis_angle_to_matrix, axis_angle_to_quaternion, make_sign_continuous,
                                  matrix_to_quaternion, quat_multiply)
from .animation import CONSTANT, Channel, animate, constant_steps, vector_channels
from .mannequin import build_mannequin
from .points import srgb_to_linear
from .props import COLOUR_PROP, FRAMES_PROP, NAME_PROP, PERSON_PROP, VIEWS_PROP

UPRIGHT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # rotation +90 deg about X
UPRIGHT_INVERSE_QUAT = matrix_to_quaternion(UPRIGHT.T)
SLIDER_LIMIT = 10.0  # Blender's widest shape-key slider range


def person_rest_joints(model, betas):
    """(55, 3) rest joints in SMPL-X's frame: from the model and betas, or the built-in skeleton."""
    if model is None:
        return approximate_rest_joints()
    return model.rest_joints(betas)


def full_pose_rotvecs(take, p, hands_mean):
    """(T, 55, 3) axis-angle per joint in SMPL-X joint order (eyes zero, hand mean added)."""
    T = take.num_frames
    lh = np.asarray(take.left_hand_pose[p], dtype=np.float64)
    rh = np.asarray(take.right_hand_pose[p], dtype=np.float64)
    if hands_mean is not None:
        lh = lh + hands_mean[0].reshape(15, 3)
        rh = rh + hands_mean[1].reshape(15, 3)
    return np.concatenate([take.global_orient[p][:, None], take.body_pose[p], take.jaw_pose[p][:, None],
                           np.zeros((T, 2, 3)), lh, rh], axis=1).astype(np.float64)


def pose_channels(take, p, rest_joints, hands_mean):
    """Per-timestep bone quaternions (T, 55, 4) and pelvis locations (T, 3) for person p."""
    quat = axis_angle_to_quaternion(full_pose_rotvecs(take, p, hands_mean))
    quat[:, 0] = quat_multiply(UPRIGHT_INVERSE_QUAT, quat[:, 0])
    quat = make_sign_continuous(quat, axis=0)
    j0 = rest_joints[0]
    location = (np.asarray(take.transl[p], dtype=np.float64) + j0) @ UPRIGHT - j0  # UPRIGHT^-1 (.)
    return quat, location


def person_material(name, person_id):
    """A material in the person's colour: Principled base colour (Cycles, EEVEE) and the
    viewport/Workbench display colour."""
    linear = srgb_to_linear(np.array(person_colour(person_id)))
    mat = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0):
        mat.use_nodes = True
    rgba = (*linear.tolist(), 1.0)
    mat.diffuse_color = rgba
    bsdf = next(n for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    bsdf.inputs["Base Color"].default_value = rgba
    bsdf.inputs["Roughness"].default_value = 0.6
    return mat

def build_people(build, take, model, frames, pose_correctives=False):
    """Armature and body mesh per person: the SMPL-X mesh with a model file, else the procedural
    mannequin (`mannequin.py`); each in its own colour. Returns [(armature, mesh)]."""
    hands_mean = None
    if model is not None and not take.flat_hand_mean:
        hands_mean = (model.hands_mean_left, model.hands_mean_right)
    template = None
    people = []
    ids = [int(i) for i in take.person_ids]
    rests = [person_rest_joints(model, take.betas[p]) for p in range(len(ids))]
    summary = people_summary(take)  # names of the take's person map, colours, frames and views seen
    names = [f"{build.collection.name}.{person}" for _, person, *_ in summary]
    armatures = build_armatures(build, names, rests)
    for p, pid in enumerate(ids):
        rest, name, arm_obj = rests[p], names[p], armatures[p]
        arm_obj[PERSON_PROP] = pid
        _, arm_obj[NAME_PROP], colour, arm_obj[FRAMES_PROP], arm_obj[VIEWS_PROP] = summary[p]
        quat, location = pose_channels(take, p, rest, hands_mean)
        hide_frames, hidden = constant_steps(frames, ~np.asarray(take.valid[p]))
        hide = [Channel(path, 0, hidden.astype(np.float32), "Visibility", CONSTANT, hide_frames)
                for path in ("hide_viewport", "hide_render")]
        channels = []
        for j, bone in enumerate(JOINT_NAMES):
            channels += vector_channels(f'pose.bones["{bone}"].rotation_quaternion', quat[:, j], bone)
        channels += vector_channels(f'pose.bones["{JOINT_NAMES[0]}"].location', location, JOINT_NAMES[0])
        build.tag(animate(arm_obj, f"{name}.pose", frames, channels + hide))
        _show_first_frame(arm_obj, hidden)
        if model is None:
            mesh_obj = build_mannequin(build, f"{name}.body", rest @ UPRIGHT.T, arm_obj)
        else:
            if template is None:
                template = _template_mesh(build, model, take, pose_correctives)
            mesh_obj = _skinned_mesh(build, f"{name}.body", template, model, arm_obj, take, p)
        mesh_obj[PERSON_PROP] = pid
        mesh_obj.data.materials.append(build.tag(person_material(f"{name}.body", pid)))
        arm_obj[COLOUR_PROP] = list(colour)
        arm_obj.color = mesh_obj.color = (*colour, 1.0)
        build.tag(animate(mesh_obj, f"{name}.body.visibility", frames, hide))
        _show_first_frame(mesh_obj, hidden)
        if model is not None:
            key_channels = [Channel(f'key_blocks["Exp{k:03d}"].value', 0, take.expression[p][:, k])
                            for k in range(take.expression.shape[2])]
            if pose_correctives:
                rot = axis_angle_to_matrix(full_pose_rotvecs(take, p, hands_mean)[:, 1:])
                feat = (rot - np.eye(3)).reshape(len(frames), -1)
                key_channels += [Channel(f'key_blocks["Pose{k:03d}"].value', 0, feat[:, k])
                                 for k in range(feat.shape[1])]
            if key_channels:
                keys = mesh_obj.data.shape_keys
                build.tag(animate(keys, f"{name}.body.keys", frames, key_channels, id_type="KEY"))
        people.append((arm_obj, mesh_obj))
    if template is not None:
        bpy.data.meshes.remove(template)
    return people


def _show_first_frame(obj, hidden):
    obj.hide_viewport = obj.hide_render = bool(hidden[0])


def build_armatures(build, names, rest_joints):
    """One armature object per name, bones at its (55, 3) rest joints; one edit-mode session."""
    objects = []
    for name in names:
        arm = bpy.data.armatures.new(name)
        arm.display_type = "STICK"
        objects.append(build.new_object(name, arm))
    if not objects:
        return objects
    # Edit mode enters every selected armature at once: select exactly ours, restore after.
    view_layer = build.scene.view_layers[0]
    active = view_layer.objects.active
    selected = [o for o in view_layer.objects if o.select_get(view_layer=view_layer)]
    for obj in selected:
        obj.select_set(False, view_layer=view_layer)
    for obj in objects:
        obj.select_set(True, view_layer=view_layer)
    view_layer.objects.active = objects[0]
    try:
        with bpy.context.temp_override(scene=build.scene, view_layer=view_layer,
                                       active_object=objects[0], object=objects[0]):
            bpy.ops.object.mode_set(mode="EDIT")
            try:
                for obj, rest in zip(objects, rest_joints):
                    _add_bones(obj.data, rest)
            finally:
                bpy.ops.object.mode_set(mode="OBJECT")
    finally:
        for obj in objects:
            obj.select_set(False, view_layer=view_layer)
        for obj in selected:
            obj.select_set(True, view_layer=view_layer)
        view_layer.objects.active = active
    for obj in objects:
        if len(obj.data.bones) != NUM_JOINTS:
            raise RuntimeError(f"{obj.name}: armature edit failed ({len(obj.data.bones)} bones)")
        for pose_bone in obj.pose.bones:
            pose_bone.rotation_mode = "QUATERNION"
    return objects


def _add_bones(arm, rest_joints):
    heads = rest_joints @ UPRIGHT.T
    lengths = _bone_lengths(rest_joints)
    bones = []
    for j, bone_name in enumerate(JOINT_NAMES):
        bone = arm.edit_bones.new(bone_name)
        bone.head = heads[j]
        bone.tail = heads[j] + (0.0, 0.0, lengths[j])
        bone.roll = 0.0
        if PARENTS[j] >= 0:
            bone.parent = bones[PARENTS[j]]
        bones.append(bone)


def _bone_lengths(rest_joints):
    """Display length per bone: mean distance to its children, 2 cm for leaves (at least 5 mm)."""
    lengths = np.full(NUM_JOINTS, 0.02)
    for j in range(NUM_JOINTS):
        children = np.flatnonzero(PARENTS == j)
        if len(children):
            lengths[j] = np.linalg.norm(rest_joints[children] - rest_joints[j], axis=1).mean()
    return np.maximum(lengths, 0.005)


def _template_mesh(build, model, take, pose_correctives):
    """The model's mesh, upright, with LBS vertex groups and shape keys (betas, expressions,
    optionally pose correctives), shared as the source every person's mesh is copied from."""
    verts = (model.v_template @ UPRIGHT.T).astype(np.float32)
    faces = model.faces.astype(np.int32)
    mesh = build.tag(bpy.data.meshes.new(f"{build.collection.name}.smplx"))
    mesh.vertices.add(len(verts))
    mesh.attributes["position"].data.foreach_set("vector", verts.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()
    # Vertex groups and shape keys need an object; a temporary one, removed after.
    holder = bpy.data.objects.new("chromm-template", mesh)
    try:
        for j, bone_name in enumerate(JOINT_NAMES):
            group = holder.vertex_groups.new(name=bone_name)
            column = model.weights[:, j]
            nonzero = np.flatnonzero(column > 0)
            values, inverse = np.unique(column[nonzero], return_inverse=True)
            for k, w in enumerate(values):
                group.add(nonzero[inverse == k].tolist(), float(w), "REPLACE")
        holder.shape_key_add(name="Basis", from_mix=False)
        num_betas, num_expr = take.betas.shape[1], take.expression.shape[2]
        directions = [("Shape", model.shapedirs, num_betas), ("Exp", model.exprdirs, num_expr)]
        if pose_correctives:
            directions.append(("Pose", model.posedirs, model.posedirs.shape[2]))
        for prefix, dirs, count in directions:
            for k in range(count):
                block = holder.shape_key_add(name=f"{prefix}{k:03d}", from_mix=False)
                block.slider_min, block.slider_max = -SLIDER_LIMIT, SLIDER_LIMIT
                block.points.foreach_set("co", (verts + dirs[:, :, k] @ UPRIGHT.T).astype(np.float32).ravel())
                block.value = 0.0
    finally:
        bpy.data.objects.remove(holder)
    return mesh


def _skinned_mesh(build, name, template, model, arm_obj, take, p):
    mesh = build.tag(template.copy())
    mesh.name = name
    obj = build.new_object(name, mesh)
    keys = mesh.shape_keys
    build.tag(keys)
    keys.name = name
    betas = np.asarray(take.betas[p], dtype=np.float64)
    scale = max(1.0, float(np.ceil(np.abs(betas).max(initial=0.0) / SLIDER_LIMIT)))
    for k, beta in enumerate(betas):
        block = keys.key_blocks[f"Shape{k:03d}"]
        if scale > 1.0:  # widen the key itself so the value stays within the slider range
            basis = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
            keys.key_blocks[0].points.foreach_get("co", basis)
            co = np.empty_like(basis)
            block.points.foreach_get("co", co)
            block.points.foreach_set("co", basis + scale * (co - basis))
        block.value = float(beta / scale)
    obj.parent = arm_obj
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = arm_obj
    modifier.use_vertex_groups = True
    modifier.use_deform_preserve_volume = False
    return obj
