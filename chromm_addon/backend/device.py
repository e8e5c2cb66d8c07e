"""What the network will run on: the device actually used, GPU name and memory, and the minimum.

The minimum is the memory of the weights as the runner holds them (float32: Pi3X without its
multimodal branch, 992 M parameters, plus Multi-HMR ViT-L, 317 M) plus the runner's fixed reserve
and the activations of the smallest window it runs (2 timesteps) at 4 views
(`network.runner.BYTES_PER_IMAGE`). Loading the weights in bf16 would halve the first term; it is
not done because it could not be checked here that the outputs stay within tolerance of float32
(no GPU on the development machines), so the figure is for float32 weights with bf16 autocast.
"""

WEIGHT_BYTES = (992_470_000 + 317_110_000) * 4
MIN_WINDOW_TIMESTEPS, CHECK_VIEWS = 2, 4


def min_vram_bytes():
    from ..network.runner import BYTES_PER_IMAGE, FIXED_RESERVE

    return WEIGHT_BYTES + FIXED_RESERVE + MIN_WINDOW_TIMESTEPS * CHECK_VIEWS * BYTES_PER_IMAGE


def device_info(device="auto", tiny=False):
    """{"device": "cuda"|"cuda:N"|"cpu", "gpu": name or None, "vram_total_bytes", "vram_free_bytes",
    "torch": version, "cuda": torch's CUDA version or None}. `tiny`: the tiny test network, which
    always runs on the CPU."""
    import torch

    from ..network.runner import resolve_device

    dev = torch.device("cpu") if tiny else resolve_device(device)
    info = {"device": str(dev), "gpu": None, "vram_total_bytes": None, "vram_free_bytes": None,
            "torch": torch.__version__, "cuda": torch.version.cuda}
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        info.update(device=f"cuda:{index}", gpu=torch.cuda.get_device_name(index),
                    vram_total_bytes=int(total), vram_free_bytes=int(free))
    return info
