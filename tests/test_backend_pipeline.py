"""The windowed pipeline with the tiny network: bounded memory, window plan, out-of-memory retry."""

import numpy as np
import pytest

from backend_synth import write_image_folder
from chromm_addon.backend.pipeline import Cancelled, ReconstructOptions, reconstruct_views
from chromm_addon.backend.progress import Progress, TerminalBar, format_eta
from chromm_addon.backend.timeline import PREFETCH
from chromm_addon.backend.timeline import open_clips
from chromm_addon.backend.video import LIVE_FRAMES
from chromm_addon.backend.windows import WindowBuffer
from chromm_addon.errors import ChrommError
from chromm_addon.io.views import validate_views
from chromm_addon.network.interface import Runner


@pytest.fixture(scope="module")
def runner():
    from chromm_addon.network.runner import NetworkRunner

    # The tiny network at a small Pi3X input, so a long take stays quick on a CPU.
    return NetworkRunner.tiny(seed=0, pixel_limit=14 * 14 * 4)


class RecordingRunner:
    """The real runner, recording how many timesteps each call got; fails like an out-of-memory
    GPU above `fail_above` timesteps."""

    def __init__(self, runner, fail_above=None):
        self.runner, self.fail_above, self.calls, self.failures = runner, fail_above, [], 0
        self.name, self.device = "recording", runner.device

    def window_size(self, image_hw, num_views):
        return self.runner.window_size(image_hw, num_views)

    def run_window(self, frames, names, fps):
        if self.fail_above is not None and len(frames[0]) > self.fail_above:
            import torch

            self.failures += 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.calls.append(len(frames[0]))
        return self.runner.run_window(frames, names, fps)


def long_take(tmp_path, num_frames, views=2):
    return [write_image_folder(tmp_path / f"view{v}", num_frames=num_frames, width=32, height=24)
            for v in range(views)]


@pytest.mark.slow
def test_long_take_memory_is_bounded_by_the_window(tmp_path, runner):
    clips = long_take(tmp_path, 13)
    peaks = {}
    for end in (0.3, 1.2):  # 4 and 13 timesteps at 10 fps
        LIVE_FRAMES.reset_peak()
        base = LIVE_FRAMES.current
        recording = RecordingRunner(runner)
        assert isinstance(recording, Runner)  # the stand-in keeps the declared interface
        views, stats = reconstruct_views(ReconstructOptions(clips=clips, image_fps=10, end=end, window=4),
                                         runner=recording)
        peaks[end] = LIVE_FRAMES.peak - base
        validate_views(views)
        assert views.num_frames == stats.timesteps == round(end * 10) + 1
        assert max(recording.calls) <= 4 and stats.buffer_frames == 4 * 2
        # Windows of 4 sharing 1 timestep: 1 + ceil((T - 4) / 3) calls.
        assert len(recording.calls) == 1 + int(np.ceil((stats.timesteps - 4) / 3))
        assert views.meta["windows"][0] == {"start": 0, "scale": 1.0}
    # Decoded frames alive at once: per clip, two around the target time, the one replacing
    # them, the prefetch queue and one in the decoder's hand, whatever the take length.
    assert max(peaks.values()) <= (4 + PREFETCH) * 2


@pytest.mark.slow
def test_out_of_memory_retries_with_a_smaller_window(tmp_path, runner):
    clips = long_take(tmp_path, 5, views=1)
    recording = RecordingRunner(runner, fail_above=2)
    views, stats = reconstruct_views(ReconstructOptions(clips=clips, image_fps=10, window=8), runner=recording)
    assert recording.failures == 1 and stats.window_size == 2  # 5 (capped at T) -> 2
    assert recording.calls == [2, 2, 2, 2]
    assert views.num_frames == 5
    validate_views(views)
    never = RecordingRunner(runner, fail_above=1)
    with pytest.raises(ChrommError, match="out of .*memory even with a window of 2"):
        reconstruct_views(ReconstructOptions(clips=clips, image_fps=10, window=4), runner=never)


def test_cancel_stops_between_timesteps(tmp_path, runner):
    import threading

    clips = long_take(tmp_path, 8, views=1)
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        reconstruct_views(ReconstructOptions(clips=clips, image_fps=10), runner=runner, cancel=event)


def test_window_buffer_keeps_the_overlap(tmp_path):
    folder = write_image_folder(tmp_path / "v", num_frames=2, width=8, height=6)
    clips, _ = open_clips([folder])
    buf = WindowBuffer(clips, 5)
    for i in range(5):
        buf.put([np.full((6, 8, 3), i, np.uint8)])
    buf.shift(3)
    assert buf.count == 2 and buf.arrays[0][0, 0, 0, 0] == 3 and buf.arrays[0][1, 0, 0, 0] == 4
    assert buf.frames_held == 5
    assert [len(w) for w in buf.window(2)] == [2]


def test_bad_window_and_device(tmp_path, runner):
    clips = long_take(tmp_path, 4, views=1)
    with pytest.raises(ChrommError, match="--window 1"):
        reconstruct_views(ReconstructOptions(clips=clips, window=1), runner=runner)
    import torch

    if not torch.cuda.is_available():
        from chromm_addon.backend.pipeline import check_device

        with pytest.raises(ChrommError, match="CUDA is not available"):
            check_device("cuda")
    with pytest.raises(ChrommError, match="expected auto, cpu or cuda"):
        reconstruct_views(ReconstructOptions(clips=clips, device="tpu"))


def test_progress_fraction_and_eta():
    now = [0.0]
    progress = Progress(clock=lambda: now[0])
    progress("open", 1, 1)
    progress("network", 0, 100)
    now[0] = 10.0
    progress("network", 25, 100)
    snap = progress.snapshot()
    assert snap["eta_s"] == pytest.approx(30.0)
    assert snap["fraction"] == pytest.approx(0.02 + 0.8 * 0.25)
    progress("fuse", 1, 1)
    assert progress.fraction() == pytest.approx(0.92)
    assert format_eta(3725) == "1:02:05" and format_eta(None) == "--:--" and format_eta(65) == "01:05"


def test_terminal_bar_lines():
    import io

    stream = io.StringIO()
    bar = TerminalBar(stream=stream)
    bar("network", 0, 40)
    for k in range(1, 41):
        bar("network", k, 40)
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[network]") and "0/40" in lines[0]
    assert "40/40" in lines[-1] and "100%" in lines[-1] and "ETA" in lines[-1]
    assert len(lines) == 11  # not a terminal: one line per stage change and per 10 %

