"""Audio sync on clips written with PyAV (AAC at 44.1 and 48 kHz) from a sound scene known in
continuous time: offsets against the cameras' true start times."""
import numpy as np
import pytest

from audio_synth import SoundScene
from backend_synth import quadrant_frame, write_av_clip
from chromm_addon.backend.audio_sync import cross_correlation, sync_audio, usable


def record(tmp_path, scene, starts, lengths, rates, gains, video=False, noise_seed=10):
    paths = []
    for j, (s, n, r, g) in enumerate(zip(starts, lengths, rates, gains)):
        frames = [quadrant_frame(32, 24)] * 3 if video else None
        paths.append(write_av_clip(tmp_path / f"cam{j}.{'mp4' if video else 'm4a'}", frames, fps=1,
                                   audio=scene.recording(s, n, r, g, seed=noise_seed + j), audio_rate=r))
    return paths


def expected(starts):
    # a camera starting later sees every event earlier in its own time: offset = latest start - start
    return max(starts) - np.asarray(starts)


def test_cross_correlation_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=37), rng.normal(size=20)
    corr, lags = cross_correlation(a, b)
    np.testing.assert_allclose(corr, np.correlate(a, b, mode="full"), atol=1e-9)
    assert lags[0] == -19 and lags[-1] == 36


def test_offsets_within_a_millisecond_across_rates_gains_and_lengths(tmp_path):
    scene = SoundScene(12, seed=3, clap_at=6.0)
    starts = [0.0, 1.23456, 2.5001, 0.4321]
    paths = record(tmp_path, scene, starts, [11, 9, 8, 10], [48000, 44100, 48000, 44100], [1, 0.3, 2, 0.7])
    result = sync_audio(paths)
    np.testing.assert_allclose(result.offsets, expected(starts), atol=1e-3)
    assert usable(result) and not result.notes
    assert min(result.confidence) >= 0.25


def test_speech_only_and_clips_with_video(tmp_path):
    scene = SoundScene(10, seed=5, clap=False, music=False)
    starts = [0.7, 0.0]
    paths = record(tmp_path, scene, starts, [8, 9], [44100, 48000], [1, 0.5], video=True)
    result = sync_audio(paths)
    np.testing.assert_allclose(result.offsets, expected(starts), atol=1e-3)
    assert usable(result)


def test_unrelated_audio_is_reported_not_hidden(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # two different conversations (syllables at unrelated times)
    a = record(tmp_path / "a", SoundScene(8, seed=1, clap=False, music=False), [0], [8], [48000], [1])
    b = record(tmp_path / "b", SoundScene(8, seed=2, clap=False, music=False), [0], [8], [48000], [1],
               noise_seed=20)
    result = sync_audio(a + b)
    assert not usable(result)
    assert result.confidence[1] < 0.25
    assert any("correlates poorly" in n for n in result.notes)


def test_clip_without_audio_is_reported(tmp_path):
    scene = SoundScene(6, seed=1)
    paths = record(tmp_path, scene, [0, 0.5], [6, 5], [48000, 48000], [1, 1])
    silent = write_av_clip(tmp_path / "silent.mp4", [quadrant_frame(32, 24)] * 3, fps=1)
    result = sync_audio(paths + [silent])
    assert result.offsets[2] is None and result.confidence[2] is None
    assert any("silent.mp4: no audio stream" in n for n in result.notes)
    assert not usable(result)
    none = sync_audio([silent])
    assert none.offsets == [None] and any("no clip has audio" in n for n in none.notes)


@pytest.mark.slow
def test_reconstruct_syncs_by_audio_and_records_offsets(tmp_path):
    from backend_synth import index_frame
    from chromm_addon.backend.pipeline import ReconstructOptions, reconstruct
    from chromm_addon.io.take import read_take

    scene = SoundScene(4, seed=4, clap_at=1.5)
    starts = [0.0, 0.3]
    paths = [write_av_clip(tmp_path / f"cam{j}.mp4", [index_frame(i) for i in range(25)], fps=10,
                           audio=scene.recording(s, 3.0, r, seed=30 + j), audio_rate=r)
             for j, (s, r) in enumerate(zip(starts, [48000, 44100]))]
    out = tmp_path / "take.npz"
    stats = reconstruct(ReconstructOptions(clips=paths, network="tiny"), str(out))
    take = read_take(str(out))
    sync = take.meta["sync"]
    assert sync["method"] in ("audio", "audio+motion") and stats.sync["method"] == sync["method"]
    np.testing.assert_allclose(sync["audio"]["offsets_s"], expected(starts), atol=1e-3)
    np.testing.assert_allclose([s["offset_s"] for s in take.meta["sources"]], sync["offsets_s"])
    np.testing.assert_allclose([s["start_time"] - s["offset_s"] for s in take.meta["sources"]], sync["start_s"])
    # typed offsets stay as typed
    reconstruct(ReconstructOptions(clips=paths, offsets=["0s", "0s"], network="tiny"), str(out))
    typed = read_take(str(out)).meta["sync"]
    assert typed["method"] == "typed" and typed["offsets_s"] == [0.0, 0.0] and typed["audio"] is None


def test_sync_command_prints_offsets_and_json(tmp_path, capsys):
    import json

    from chromm_addon.cli import main

    scene = SoundScene(6, seed=7, clap_at=3.0)
    starts = [0.5, 0.0]
    paths = record(tmp_path, scene, starts, [5, 5.5], [44100, 48000], [1, 1], video=True)
    assert main(["sync", *paths, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "audio"
    np.testing.assert_allclose([c["offset_s"] for c in report["clips"]], expected(starts), atol=1e-3)
    assert main(["sync", *paths, "--method", "audio"]) == 0
    out = capsys.readouterr().out
    assert "sync by audio" in out and "cam0" in out and "confidence" in out
    silent = write_av_clip(tmp_path / "silent.mp4", [quadrant_frame(32, 24)] * 3, fps=1)
    assert main(["sync", paths[0], silent, "--method", "audio"]) == 0
    out = capsys.readouterr().out
    assert "no offset" in out
    assert "silent.mp4: no audio stream" in out


@pytest.mark.slow
def test_sync_command_by_motion_runs_the_network(tmp_path, capsys):
    import json

    from backend_synth import write_clip
    from chromm_addon.cli import main

    paths = [write_clip(tmp_path / f"v{j}.avi", 12, 10) for j in range(2)]
    assert main(["sync", *paths, "--method", "motion", "--tiny-network", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "motion" and [c["offset_s"] for c in report["clips"]] == [0.0, 0.0]
    assert any("too short to sync by motion" in n for n in report["notes"])
