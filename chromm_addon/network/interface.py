"""What a network runner is, and the checks of its device and weight files (docs/network.md).

A runner turns the frames of one window (all views, the same timesteps) into a views file
(contract 3). The backend only uses what `Runner` declares; `registry.py` names the runners and
builds the one asked for. Stdlib only: importable without torch.
"""

import typing

from ..errors import ChrommError

WEIGHTS_HINT = "run `python -m chromm_addon weights check`"


@typing.runtime_checkable
class Runner(typing.Protocol):
    """The contract between the backend and a network.

    name    the runner's registry name ("chromm", "composition", "tiny", or a stand-in's)
    device  where it runs, as text ("cpu", "cuda", "cuda:1")
    """

    name: str
    device: str

    def window_size(self, image_hw, num_views) -> int:
        """Timesteps per window that fit the device's free memory, all `num_views` views of
        (height, width) `image_hw` batched together."""

    def run_window(self, frames, view_names, fps, cameras=None):
        """frames: one uint8 RGB array (T, H, W, 3) per view (sizes may differ between views),
        the same T timesteps. Returns a `Views` (io.views) of T timesteps; raises MemoryError or
        torch's OutOfMemoryError when the window does not fit (the backend then halves it).

        cameras (passed only when the user gave known cameras): per view None or an object with
        `K` (3x3, pixels of the frames as passed, i.e. undistorted) and `c2w` (4x4), either None.
        A runner may condition on them or ignore them: the backend sets the known intrinsics and
        fits the views to the known poses afterwards (backend/known_cameras.py)."""


def check_device(device):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N'; a clear error when CUDA is asked for but absent."""
    text = str(device)
    if text not in ("auto", "cpu", "cuda") and not (text.startswith("cuda:") and text[5:].isdigit()):
        raise ChrommError(f"--device {device!r}: expected auto, cpu or cuda")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ChrommError(f"--device {text}: CUDA is not available here (torch {torch.__version__}, "
                              "no CUDA GPU); use --device cpu or auto")
    return text


def weight_problem(weights_dir=None, chromm=False):
    """None when the Pi3X and Multi-HMR files (and with `chromm` the CHROMM checkpoint) are in
    place, else one line saying which file is missing and where to get it."""
    from . import weights as w

    files = w.find_weight_files(weights_dir)
    for kind in ("pi3x", "multihmr", "chromm") if chromm else ("pi3x", "multihmr"):
        if getattr(files, kind) is None:
            return f"{files.where_to_put(kind)}: network weights not found ({w.SOURCES[kind]}); {WEIGHTS_HINT}"
    return None


def check_weights(weights_dir=None, chromm=False):
    problem = weight_problem(weights_dir, chromm)
    if problem:
        raise ChrommError(problem)
