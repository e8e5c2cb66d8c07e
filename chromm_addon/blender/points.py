"""The scene point cloud: a vertex-only mesh turned into renderable points by Geometry Nodes.

The mesh holds every point with its colour (`Col`, linear float RGBA from the take's sRGB bytes) and the integer attribute
`chromm_frame`: -1 for static points, the scene frame for a dynamic point. The node group keeps a
point when it is static or its frame is the scene's current frame, converts the mesh to points
with a radius input, and sets a material that reads `Col`.
"""

import bpy
import numpy as np

from .props import FRAME_ATTR, POINTS_PROP

COLOR_ATTR = "Col"
PIXEL_RADIUS = 0.75  # smallest point radius, in pixels of the views


def srgb_to_linear(c):
    """Linear values of sRGB values in 0..1."""
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


SRGB_TO_LINEAR = srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)  # take colours are sRGB bytes


def build_point_cloud(build, take, frame_start):
    """The point-cloud object of a take (one data-block, renderable, dynamic points per frame)."""
    points = np.ascontiguousarray(take.points, dtype=np.float32)
    n = len(points)
    mesh = bpy.data.meshes.new(f"{build.collection.name}.points")
    mesh.vertices.add(n)
    if n:  # an empty mesh has no position attribute yet
        # The attribute API copies whole arrays; vertices.foreach_set("co") goes per vertex (80x slower).
        mesh.attributes["position"].data.foreach_set("vector", points.ravel())
    rgba = np.ones((n, 4), dtype=np.float32)
    rgba[:, :3] = SRGB_TO_LINEAR[np.asarray(take.colors)]
    colors = mesh.color_attributes.new(COLOR_ATTR, "FLOAT_COLOR", "POINT")
    colors.data.foreach_set("color", rgba.ravel())
    frames = np.full(n, -1, dtype=np.int32)
    if take.point_frames is not None:
        dynamic = take.point_frames >= 0
        frames[dynamic] = take.point_frames[dynamic] + frame_start
    mesh.attributes.new(FRAME_ATTR, "INT", "POINT").data.foreach_set("value", frames)
    mesh.update()
    obj = build.new_object(f"{build.collection.name}.points", mesh)
    obj[POINTS_PROP] = n
    material = build.tag(_point_material(f"{build.collection.name}.points"))
    mesh.materials.append(material)
    group = build.tag(_point_node_group(f"{build.collection.name}.points", material))
    modifier = obj.modifiers.new("CHROMM points", "NODES")
    modifier.node_group = group
    radius = max(default_radius(points, frames), pixel_radius(take, points))
    modifier[group.interface.items_tree["Radius"].identifier] = radius
    return obj


def default_radius(points, frames):
    """Half the mean spacing of the static points if they filled their bounding box's surface."""
    static = points[frames < 0] if np.any(frames < 0) else points
    if len(static) < 2:
        return 0.01
    lo, hi = bounding_box(static)
    return float(np.clip(0.5 * np.linalg.norm(hi - lo) / np.sqrt(len(static)), 0.002, 0.05))


def pixel_radius(take, points, pixels=PIXEL_RADIUS):
    """The radius that is `pixels` pixels wide in the views, at their median distance from the
    middle of the scene (first timestep), so points never vanish between pixels in a render."""
    if not take.num_views or not len(points):
        return 0.0
    lo, hi = bounding_box(points)
    centres = np.asarray(take.cam_c2w[:, 0, :3, 3], dtype=np.float64)
    distance = np.linalg.norm(centres - 0.5 * (lo + hi), axis=1)
    return float(np.median(pixels * distance / np.asarray(take.cam_K[:, 0, 0, 0], dtype=np.float64)))


def bounding_box(points):
    """(min, max) corners of (N, 3) points; column by column (numpy's axis-0 reduce on (N, 3) is slow)."""
    points = np.asarray(points)
    return (np.array([points[:, i].min() for i in range(3)]),
            np.array([points[:, i].max() for i in range(3)]))


def _point_material(name):
    mat = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0):
        mat.use_nodes = True
    tree = mat.node_tree
    bsdf = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    attr = tree.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = COLOR_ATTR
    attr.location = (-300, 0)
    tree.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 1.0
    return mat


def _point_node_group(name, material):
    ng = bpy.data.node_groups.new(name, "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    radius = ng.interface.new_socket("Radius", in_out="INPUT", socket_type="NodeSocketFloat")
    radius.min_value, radius.default_value = 0.0, 0.01
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = ng.nodes, ng.links
    n_in, n_out = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    frame_attr = nodes.new("GeometryNodeInputNamedAttribute")
    frame_attr.data_type = "FLOAT"
    frame_attr.inputs["Name"].default_value = FRAME_ATTR
    time = nodes.new("GeometryNodeInputSceneTime")
    # Subframe-safe: a dynamic point is shown while |frame - scene frame| <= 0.5.
    at_frame = _compare(nodes, "EQUAL", 0.5)
    links.new(frame_attr.outputs["Attribute"], at_frame.inputs["A"])
    links.new(time.outputs["Frame"], at_frame.inputs["B"])
    static = _compare(nodes, "EQUAL", 0.5)
    links.new(frame_attr.outputs["Attribute"], static.inputs["A"])
    static.inputs["B"].default_value = -1.0
    shown = nodes.new("FunctionNodeBooleanMath")
    shown.operation = "OR"
    links.new(static.outputs["Result"], shown.inputs[0])
    links.new(at_frame.outputs["Result"], shown.inputs[1])
    to_points = nodes.new("GeometryNodeMeshToPoints")
    links.new(n_in.outputs["Geometry"], to_points.inputs["Mesh"])
    links.new(shown.outputs["Boolean"], to_points.inputs["Selection"])
    links.new(n_in.outputs["Radius"], to_points.inputs["Radius"])
    set_mat = nodes.new("GeometryNodeSetMaterial")
    set_mat.inputs["Material"].default_value = material
    links.new(to_points.outputs["Points"], set_mat.inputs["Geometry"])
    links.new(set_mat.outputs["Geometry"], n_out.inputs["Geometry"])
    for i, node in enumerate((n_in, frame_attr, time, at_frame, static, shown, to_points, set_mat, n_out)):
        node.location = (200 * i, 0)
    return ng


def _compare(nodes, operation, epsilon):
    node = nodes.new("FunctionNodeCompare")
    node.data_type = "FLOAT"
    node.operation = operation
    node.inputs["Epsilon"].default_value = epsilon
    return node
