"""What a network runner is, which runners exist, and how one is chosen (docs/network.md).

A runner turns the frames of one window (all views, the same timesteps) into a views file
(contract 3). The backend only uses what `Runner` declares. Runners are chosen by name
(`--network auto|chromm|composition|tiny`); `load_runner` checks the device and the weights (once,
here) before building one. Stdlib only: importable without torch.
"""

import dataclasses
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

    def run_window(self, frames, view_names, fps):
        """frames: one uint8 RGB array (T, H, W, 3) per view (sizes may differ between views),
        the same T timesteps. Returns a `Views` (io.views) of T timesteps; raises MemoryError or
        torch's OutOfMemoryError when the window does not fit (the backend then halves it)."""


@dataclasses.dataclass(frozen=True)
class RunnerEntry:
    description: str
    needs_weights: bool           # the Pi3X and Multi-HMR files
    needs_chromm: bool = False    # the CHROMM checkpoint (heads)
    build: typing.Callable = None  # (options) -> Runner; `options` a ReconstructOptions


def _build_weights(network):
    def build(options):
        from .runner import NetworkRunner

        return NetworkRunner(options.weights, device=options.device, seed=options.seed,
                             use_heads=network == "chromm")
    return build


def _build_tiny(options):
    from .runner import NetworkRunner

    return NetworkRunner.tiny(seed=options.seed, device=options.device)


# The runners, by name. Adding one is one entry here (its class implements `Runner`).
RUNNERS = {
    "chromm": RunnerEntry("Pi3X and Multi-HMR with CHROMM's heads (needs the CHROMM checkpoint)",
                          needs_weights=True, needs_chromm=True, build=_build_weights("chromm")),
    "composition": RunnerEntry("Pi3X's cameras and points with Multi-HMR's people, without CHROMM's heads",
                               needs_weights=True, build=_build_weights("composition")),
    "tiny": RunnerEntry("a small random-initialised network (tests and trying the pipeline; no weights)",
                        needs_weights=False, build=_build_tiny),
}
AUTO = "auto"
NETWORK_CHOICES = {AUTO: "chromm when the CHROMM checkpoint is installed, else composition",
                   **{name: entry.description for name, entry in RUNNERS.items()}}


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


def missing_weights(weights_dir=None, network=AUTO):
    """None when the files `network` needs are in place, else a one-line message saying what to do."""
    from . import weights as w

    entry = RUNNERS.get(network)
    if network != AUTO and entry is None:
        raise ChrommError(f"--network {network!r}: expected {', '.join(NETWORK_CHOICES)}")
    if entry is not None and not entry.needs_weights:
        return None
    files = w.find_weight_files(weights_dir)
    kinds = ("pi3x", "multihmr", "chromm") if entry is not None and entry.needs_chromm else ("pi3x", "multihmr")
    for kind in kinds:
        if getattr(files, kind) is None:
            return f"{files.where_to_put(kind)}: network weights not found ({w.SOURCES[kind]}); {WEIGHTS_HINT}"
    return None


def check_weights(weights_dir=None, network=AUTO):
    problem = missing_weights(weights_dir, network)
    if problem:
        raise ChrommError(problem)


def resolve_network(network, weights_dir=None):
    """The registry name `network` ("auto" included) stands for with these weights."""
    if network != AUTO:
        if network not in RUNNERS:
            raise ChrommError(f"--network {network!r}: expected {', '.join(NETWORK_CHOICES)}")
        return network
    from . import weights as w

    return "chromm" if w.find_weight_files(weights_dir).chromm else "composition"


def check_runner_options(options):
    """Device and weights of `options` (a ReconstructOptions), before torch or the network loads;
    returns the resolved network name."""
    check_device(options.device)
    network = resolve_network(options.network, options.weights)
    check_weights(options.weights, network)
    return network


def load_runner(options):
    """The runner `options.network` names, on `options.device`, checked first."""
    network = check_runner_options(options)
    return RUNNERS[network].build(options)
