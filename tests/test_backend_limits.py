"""Frame size is refused from the container's header, before a frame is decoded."""

import os
import subprocess
import sys

import pytest

from chromm_addon.backend.limits import MAX_SIDE, check_frame_header
from chromm_addon.errors import ChrommError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_png_avi(path, width, height):
    """One gray frame, PNG-coded in AVI: a 9000x9000 frame is 100 kB on disk, 243 MB decoded as RGB."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "gray"
        frame = av.VideoFrame(width, height, "gray")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


PEAK = """
import resource, sys
sys.path.insert(0, {root!r})
from chromm_addon.backend.video import open_clip
from chromm_addon.errors import ChrommError
try:
    open_clip({path!r})
    print("opened")
except ChrommError as exc:
    print(exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _open_in_child(path):
    done = subprocess.run([sys.executable, "-c", PEAK.format(root=ROOT, path=str(path))],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    message, peak_mb = done.stdout.strip().splitlines()
    return message, int(peak_mb)


@pytest.mark.slow
def test_huge_frames_refused_without_decoding(tmp_path):
    small = write_png_avi(tmp_path / "small.avi", 64, 48)
    huge = write_png_avi(tmp_path / "huge.avi", 9000, 9000)
    assert os.path.getsize(huge) < 1 << 20
    with pytest.raises(ChrommError, match=rf"huge.avi: frame size 9000x9000 is outside 2..{MAX_SIDE} pixels"):
        check_frame_header(huge, "huge.avi")
    check_frame_header(small)  # fine
    message, peak = _open_in_child(huge)
    assert message == f"{huge}: frame size 9000x9000 is outside 2..{MAX_SIDE} pixels per side"
    opened, baseline = _open_in_child(small)
    assert opened == "opened"
    # Decoding one 9000x9000 frame would take 243 MB (RGB) on top of the baseline.
    assert peak - baseline < 100, (peak, baseline)


def test_header_check_leaves_unknown_files_to_the_decoder(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    check_frame_header(junk)  # PyAV cannot open it: no verdict here, the decoder reports it
