"""Parameter counts of the network's components, built on the meta device (no weights allocated).

Counts are state-dict elements (parameters plus persistent buffers), the measure the reference
figures use: Pi3X 1360.03M with its multimodal branch (992.47M without), Multi-HMR ViT-L/896 317.11M.
"""

COMPONENTS = (("pi3x", "Pi3X (scene, cameras, metric scale)"),
              ("multihmr", "Multi-HMR ViT-L/14 @ 896 (people)"),
              ("heads", "CHROMM heads (fusion, SMPL-X, depth, mask, pelvis)"))


def build_on_meta(preset="full"):
    """{'pi3x', 'multihmr', 'heads'} modules of a configuration, on the meta device."""
    import torch

    from .chromm import build_heads, build_multihmr, build_pi3x

    with torch.device("meta"):
        return {"pi3x": build_pi3x(preset), "multihmr": build_multihmr(preset), "heads": build_heads(preset)}


def count_elements(module):
    return sum(v.numel() for v in module.state_dict().values())


def group_counts(module):
    """[(top-level name, elements)] in state-dict order."""
    groups = {}
    for key, value in module.state_dict().items():
        name = key.split(".")[0]
        groups[name] = groups.get(name, 0) + value.numel()
    return list(groups.items())


def parameter_table(preset="full"):
    """Rows (name, elements, indent) of every component and its top-level parts, then the total."""
    modules = build_on_meta(preset)
    rows, total = [], 0
    for key, title in COMPONENTS:
        count = count_elements(modules[key])
        total += count
        rows.append((title, count, 0))
        rows.extend((name, n, 1) for name, n in group_counts(modules[key]))
    rows.append(("total", total, 0))
    return rows


def format_table(rows):
    width = max(len(name) + 2 * indent for name, _, indent in rows)
    lines = [f"{'component':<{width}}  {'parameters':>12}", "-" * (width + 14)]
    for name, count, indent in rows:
        lines.append(f"{'  ' * indent + name:<{width}}  {count / 1e6:>11.2f}M")
    return "\n".join(lines)
