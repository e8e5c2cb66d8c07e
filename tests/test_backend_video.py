"""Video input: opening clips, offsets, the common timeline and sampling by timestamp."""

import os

import numpy as np
import pytest

from backend_synth import read_index, write_clip, write_image_folder
from chromm_addon.backend.timeline import PREFETCH, open_clips, plan_timeline, sample
from chromm_addon.backend.video import LIVE_FRAMES, Offset, parse_offset
from chromm_addon.errors import ChrommError


def sampled_indices(paths, offsets=None, fps=None, start=None, end=None, image_fps=None):
    clips, secs = open_clips(paths, offsets, image_fps)
    timeline = plan_timeline(clips, secs, fps, start, end)
    return timeline, [[read_index(f) for f in frames] for _, frames in sample(clips, secs, timeline)]


def test_parse_offset():
    assert parse_offset("1.5s") == Offset(1.5, "s")
    assert parse_offset("12f") == Offset(12.0, "f")
    assert parse_offset("12") == Offset(12.0, "f")
    assert parse_offset(12) == Offset(12.0, "f")
    assert parse_offset("-0.25s").seconds(30) == -0.25
    assert parse_offset("15f").seconds(30) == 0.5
    for bad in ("abc", "1.5f", "s", "", True):
        with pytest.raises(ChrommError, match="offset"):
            parse_offset(bad)


def test_index_roundtrip_through_video(tmp_path):
    path = write_clip(tmp_path / "a.avi", 20, 25)
    timeline, picked = sampled_indices([path])
    assert timeline.fps == 25 and timeline.count == 20
    assert [p[0] for p in picked] == list(range(20))


def test_two_rates_and_offset_line_up(tmp_path):
    # a: 30 fps, 60 frames (2 s); b: 15 fps, 24 frames; b's frame i shows i, at clip time i/15.
    a = write_clip(tmp_path / "a.avi", 60, 30)
    b = write_clip(tmp_path / "b.avi", 24, 15)
    # Common zero = 0.5 s into a and 0 s into b: a covers -0.5..1.467, b 0..1.533.
    timeline, picked = sampled_indices([a, b], offsets=["0.5s", "0f"], fps=15)
    assert timeline.start == pytest.approx(0.0)
    assert timeline.count == int(np.floor((59 / 30 - 0.5) * 15 + 1e-6)) + 1
    for k, (ia, ib) in enumerate(picked):
        t = k / 15
        assert ia == round((t + 0.5) * 30)
        assert ib == k
    # The same offset in frames of clip a.
    _, picked_frames = sampled_indices([a, b], offsets=["15f", "0s"], fps=15)
    assert picked_frames == picked


def test_target_rate_above_source_repeats_nearest(tmp_path):
    a = write_clip(tmp_path / "a.avi", 10, 10)
    timeline, picked = sampled_indices([a], fps=20)
    assert timeline.count == 19
    indices = [p[0] for p in picked]
    assert indices[::2] == list(range(10))  # even timesteps fall on source frames
    assert all(abs(i - k / 2) <= 0.5 for k, i in enumerate(indices))  # odd ones: a neighbour
    assert indices == sorted(indices)


def test_vfr_image_folder_picks_nearest_by_time(tmp_path):
    # Irregular times, like phone video with dropped frames.
    times = [0.0, 0.033, 0.066, 0.132, 0.165, 0.198, 0.297, 0.33, 0.363, 0.396]
    folder = write_image_folder(tmp_path / "vfr", times=times)
    timeline, picked = sampled_indices([folder], fps=30)
    assert timeline.count == int(np.floor(0.396 * 30 + 1e-6)) + 1
    for k, (index,) in enumerate(picked):
        t = k / 30
        assert index == int(np.argmin([abs(x - t) for x in times]))


def test_image_folder_assumed_fps_and_range(tmp_path):
    folder = write_image_folder(tmp_path / "seq", num_frames=30)
    timeline, picked = sampled_indices([folder], image_fps=10, start=0.5, end=1.5)
    assert timeline.fps == 10 and timeline.start == 0.5 and timeline.count == 11
    assert [p[0] for p in picked] == list(range(5, 16))


def test_non_overlapping_clips_are_refused(tmp_path):
    a = write_clip(tmp_path / "a.avi", 20, 20)
    b = write_clip(tmp_path / "b.avi", 20, 20)
    with pytest.raises(ChrommError, match="do not overlap"):
        sampled_indices([a, b], offsets=["0s", "3s"])


def test_bad_inputs(tmp_path):
    with pytest.raises(ChrommError, match="no such file"):
        open_clips([str(tmp_path / "missing.mp4")])
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 10)
    with pytest.raises(ChrommError, match="not a video"):
        open_clips([str(text)])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ChrommError, match="empty"):
        open_clips([str(empty)])
    os.makedirs(tmp_path / "nothing")
    with pytest.raises(ChrommError, match="no images"):
        open_clips([str(tmp_path / "nothing")])
    tiny = write_image_folder(tmp_path / "tiny", num_frames=2, width=1, height=1)
    with pytest.raises(ChrommError, match="frame size 1x1"):
        open_clips([tiny])
    a = write_clip(tmp_path / "a.avi", 5, 10)
    with pytest.raises(ChrommError, match="2 offsets given for 1 clips"):
        open_clips([a], offsets=["0s", "1s"])
    clips, secs = open_clips([a])
    with pytest.raises(ChrommError, match="target frame rate"):
        plan_timeline(clips, secs, fps=1000)
    with pytest.raises(ChrommError, match="--start"):
        plan_timeline(clips, secs, start=10)
    with pytest.raises(ChrommError, match="at most"):
        open_clips([a] * 17)


@pytest.mark.parametrize("prefetch", [0, PREFETCH])
def test_sampling_holds_a_bounded_number_of_frames(tmp_path, prefetch):
    a = write_clip(tmp_path / "a.avi", 40, 20)
    b = write_clip(tmp_path / "b.avi", 40, 20)
    clips, secs = open_clips([a, b])
    timeline = plan_timeline(clips, secs)
    LIVE_FRAMES.reset_peak()
    before = LIVE_FRAMES.current
    picked = []
    for _, frames in sample(clips, secs, timeline, prefetch=prefetch):
        picked.append([read_index(f) for f in frames])
        del frames
    assert picked == [[k, k] for k in range(40)]
    # Per clip: the frames before and after the target time, the one replacing them, the
    # prefetch queue and the one the decoder thread has in hand.
    assert LIVE_FRAMES.peak - before <= (4 + prefetch) * len(clips)


def test_sampling_stops_cleanly_when_abandoned(tmp_path):
    a = write_clip(tmp_path / "a.avi", 40, 20)
    clips, secs = open_clips([a])
    timeline = plan_timeline(clips, secs)
    stream = sample(clips, secs, timeline)
    next(stream)
    stream.close()  # the decoder thread ends and releases the clip
    import threading

    assert not [t for t in threading.enumerate() if t.name.startswith("decode ")]
