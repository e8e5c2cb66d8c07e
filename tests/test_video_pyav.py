"""Real clips written with PyAV: rotation tags, mirroring, VFR timestamps, non-square pixels,
10-bit and HDR sources, decoded by backend/video.py as they are meant to be shown."""
import numpy as np
import pytest

from backend_synth import index_frame, quadrant_frame, read_index, write_av_clip
from chromm_addon.backend.timeline import open_clips, plan_timeline, sample
from chromm_addon.backend.video import VideoClip, open_clip, orientation_from_matrix
from chromm_addon.errors import ChrommError


def decoded(path):
    clip = open_clip(path)
    return clip, [(f.time, f.load()) for f in clip.frames()]


def close(image, expected, tol=12):
    return image.shape == expected.shape and np.abs(image.astype(int) - expected).mean() < tol


# (rotation counter-clockwise in degrees, hflip, vflip) as PyAV documents set_display_rotation:
# rotate, then mirror.
@pytest.mark.parametrize("rotation,hflip,vflip", [(0, False, False), (90, False, False), (180, False, False),
                                                  (270, False, False), (-90, False, False), (90, True, False),
                                                  (0, True, False), (0, False, True), (270, False, True)])
def test_display_matrix_is_applied(tmp_path, rotation, hflip, vflip):
    frames = [quadrant_frame(64, 48, i) for i in range(3)]
    path = write_av_clip(tmp_path / "r.mp4", frames, rotation=rotation, hflip=hflip, vflip=vflip)
    clip, out = decoded(path)
    expected = np.rot90(frames[1], k=(rotation // 90) % 4)
    if hflip:
        expected = expected[:, ::-1]
    if vflip:
        expected = expected[::-1]
    assert (clip.width, clip.height) == (expected.shape[1], expected.shape[0])
    assert close(out[1][1], expected)
    assert not clip.notes


def test_unreadable_rotation_tag_is_reported_and_ignored(tmp_path):
    c, s = int(0.7071 * 65536), int(0.7071 * 65536)
    path = write_av_clip(tmp_path / "r45.mp4", [quadrant_frame()] * 2, matrix=[c, -s, 0, s, c, 0, 0, 0, 1 << 30])
    clip, out = decoded(path)
    assert len(clip.notes) == 1 and "rotation tag" in clip.notes[0] and "r45.mp4" in clip.notes[0]
    assert close(out[0][1], quadrant_frame())


def test_orientation_from_matrix_rejects_non_rigid():
    one = 1 << 16
    assert orientation_from_matrix([0, -one, 0, one, 0, 0, 0, 0, 1 << 30]).transpose
    assert orientation_from_matrix([one, 0, 0, 0, 2 * one, 0, 0, 0, 1 << 30]) is None
    assert orientation_from_matrix([0, 0, 0, 0, 0, 0, 0, 0, 0]) is None


def test_variable_frame_rate_keeps_presentation_times(tmp_path):
    times = [0.0, 0.033, 0.066, 0.132, 0.165, 0.3, 0.333, 0.4]
    frames = [index_frame(i) for i in range(len(times))]
    path = write_av_clip(tmp_path / "vfr.mp4", frames, times=times)
    clip, out = decoded(path)
    np.testing.assert_allclose([t for t, _ in out], times, atol=1e-4)
    # sampling at 30 fps picks the frame nearest in time (marker width tells which)
    clips, offsets = open_clips([path])
    timeline = plan_timeline(clips, offsets, fps=30)
    for k, (image,) in sample(clips, offsets, timeline):
        nearest = int(np.argmin([abs(x - timeline.time(k)) for x in times]))
        assert read_index(image) == nearest


def test_non_square_pixels_are_stretched(tmp_path):
    frames = [quadrant_frame(64, 48)] * 2
    path = write_av_clip(tmp_path / "anamorphic.mp4", frames, sar=(4, 3))
    clip, out = decoded(path)
    assert (clip.width, clip.height) == (86, 48) and out[0][1].shape == (48, 86, 3)
    import cv2

    assert close(out[0][1], cv2.resize(frames[0], (86, 48), interpolation=cv2.INTER_CUBIC))
    narrow = write_av_clip(tmp_path / "narrow.mp4", frames, sar=(1, 2))
    assert open_clip(narrow).height == 96


def test_ten_bit_source_gives_8bit_rgb(tmp_path):
    frames = [quadrant_frame(64, 48)] * 2
    path = write_av_clip(tmp_path / "deep.mkv", frames, codec="ffv1", pix_fmt="yuv420p10le")
    clip, out = decoded(path)
    image = out[0][1]
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
    # flat regions away from chroma edges: within 2 levels of the source
    assert np.abs(image[8:20, 8:28].astype(int) - frames[0][8:20, 8:28]).max() <= 2


def test_hdr_pq_source_is_tone_mapped(tmp_path):
    # PQ code 0.58 is about 200 cd/m^2, diffuse white: it must come out bright, not grey
    value = int(0.58 * 65535)
    rgb16 = np.full((48, 64, 3), value, np.uint16)
    import av

    frame = av.VideoFrame.from_ndarray(rgb16, format="rgb48le").reformat(format="yuv420p10le")
    path = tmp_path / "hdr.mkv"
    out = av.open(str(path), "w")
    stream = out.add_stream("ffv1", rate=30)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p10le"
    stream.codec_context.color_trc = 16
    frame.color_trc = 16
    for packet in list(stream.encode(frame)) + list(stream.encode()):
        out.mux(packet)
    out.close()
    clip, frames = decoded(str(path))
    assert clip.hdr == "pq"
    assert frames[0][1].dtype == np.uint8 and frames[0][1].mean() > 235
    naive = round(0.58 * 255)  # what plain 8-bit conversion would give (grey)
    assert naive < 160


def test_header_size_is_checked_before_decoding(tmp_path, monkeypatch):
    import chromm_addon.backend.limits as limits

    path = write_av_clip(tmp_path / "big.mp4", [quadrant_frame()] * 2)
    monkeypatch.setattr(limits, "MAX_SIDE", 40)
    with pytest.raises(ChrommError, match="64x48"):
        VideoClip(path)
    with pytest.raises(ChrommError, match="64x48"):
        open_clip(path)


def test_audio_only_file_is_not_a_clip(tmp_path):
    path = write_av_clip(tmp_path / "sound.m4a", None, audio=np.zeros(4800))
    with pytest.raises(ChrommError, match="no video stream"):
        open_clip(path)
