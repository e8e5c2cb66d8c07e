"""The network runners by name, and how the one asked for is checked and built (docs/network.md).

`--network auto|chromm|composition|tiny` names an entry of `RUNNERS` (auto: chromm when the
CHROMM checkpoint is installed, else composition). `load_runner` checks the device and the weight
files once, before torch is imported, then builds the runner. Stdlib only at import time.
"""

import dataclasses
import typing

from ..errors import ChrommError
from .interface import check_device, weight_problem


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


def missing_weights(weights_dir=None, network=AUTO):
    """None when the files `network` needs are in place, else a one-line message saying what to do."""
    entry = RUNNERS.get(resolve_network(network, weights_dir))
    return weight_problem(weights_dir, entry.needs_chromm) if entry.needs_weights else None


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
