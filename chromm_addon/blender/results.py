"""A finished reconstruction lands in the scene: build the take, keep its sources, summarise."""

from ..body.model_file import configured_model
from ..io.take import read_take
from .build import build_take
from .collection import remove_take
from .props import BUILD_PROP, TAKE_PATH_PROP, VIEWS_PATH_PROP
from .render_setup import attach_sources_from_meta


def apply_take(scene, take_path, name, smplx_path=None, replace=None, sources=None, views_path=None):
    """Build the take at `take_path` into `scene` as a new collection `name`.

    `replace`: a previous take collection to remove first. `sources`: the add-on's per-view clips
    ({"path", "start_time"}) for the camera backgrounds. `views_path`: the views file the take was
    fused from (People > Refine re-fuses it). The collection remembers both paths.
    Returns (collection, summary text).
    """
    take = read_take(take_path)
    if sources:
        # The service may run elsewhere: the clip paths are the add-on's own, the start times the
        # service's when it sent them (they include the time range it chose).
        timed = take.meta.get("sources") or []
        if len(timed) == len(sources):
            sources = [{**s, "start_time": t.get("start_time", s["start_time"])}
                       for s, t in zip(sources, timed)]
        take.meta["sources"] = sources
    model = configured_model(smplx_path)
    if replace is not None and replace.get(BUILD_PROP) is not None:
        remove_take(replace)
    collection = build_take(take, name=name, smplx_model=model, scene=scene)
    collection[TAKE_PATH_PROP] = str(take_path)
    if views_path:
        collection[VIEWS_PATH_PROP] = str(views_path)
    attach_sources_from_meta(collection, take.meta, scene)
    scale = (take.meta.get("source") or {}).get("scale")  # fusion's scene scale (fusion.pipeline)
    summary = (f"{take.num_people} people, {take.num_views} views, {take.num_frames} frames "
               f"at {take.fps:g} fps" + (f", scale x{float(scale):.3f}" if scale else "")
               + ("" if model is not None else " (mannequins: no SMPL-X model file)"))
    return collection, summary
