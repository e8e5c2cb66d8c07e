"""Pi3X and Multi-HMR inputs are upstream's pixels: compared with Pillow called as upstream does."""
import numpy as np
import pytest
from PIL import Image, ImageOps

from chromm_addon.network.multihmr_preprocess import letterbox_frames, letterbox_uint8
from chromm_addon.network.preprocess import pi3x_image_size, preprocess_frames, resize_frames


def photo_like(width, height, seed=0):
    """Smooth shading, hard-edged shapes, fine stripes and sensor noise: what breaks resamplers."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([x / width * 200, y / height * 200, (x + y) / (width + height) * 255], -1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(5, height / 4)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    img[:, : width // 3] += 60 * np.sin(x[:, : width // 3] * 2.7)[..., None]    # stripes near Nyquist
    img[height // 2: height // 2 + 3] = 255                                        # a thin white line
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def upstream_pi3x(frame, size):
    """Upstream Pi3X: `img.resize((W, H), Image.Resampling.LANCZOS)`, then ToTensor (/255)."""
    return np.asarray(Image.fromarray(frame).convert("RGB").resize(size, Image.Resampling.LANCZOS))


def upstream_multihmr(frame, size):
    """Upstream Multi-HMR `open_image`: ImageOps.contain then ImageOps.pad (black)."""
    img = ImageOps.contain(Image.fromarray(frame).convert("RGB"), (size, size))
    return np.asarray(ImageOps.pad(img, size=(size, size)))


@pytest.mark.parametrize("wh", [(1920, 1080), (1080, 1920), (641, 479), (500, 500), (333, 1001)])
def test_pi3x_input_is_pillows_lanczos(wh):
    frames = np.stack([photo_like(*wh, seed=s) for s in range(2)])
    size = pi3x_image_size(*wh)
    x, got_size = preprocess_frames(frames)
    assert got_size == size
    for i in range(2):
        expected = upstream_pi3x(frames[i], size).astype(np.float32) / 255.0
        assert np.array_equal(x[i].permute(1, 2, 0).numpy(), expected)


def test_resize_keeps_leading_axes_and_rejects_floats():
    frames = np.stack([photo_like(160, 90, s) for s in range(6)]).reshape(2, 3, 90, 160, 3)
    out = resize_frames(frames, (56, 28))
    assert out.shape == (2, 3, 28, 56, 3)
    assert np.array_equal(out[1, 2], upstream_pi3x(frames[1, 2], (56, 28)))
    with pytest.raises(ValueError, match="uint8"):
        resize_frames(frames.astype(np.float32), (56, 28))


@pytest.mark.parametrize("wh,size", [((1920, 1080), 896), ((1080, 1920), 896), ((641, 479), 448),
                                     ((333, 1001), 448), ((300, 300), 448), ((448, 300), 448),
                                     ((2000, 1999), 672)])
def test_multihmr_letterbox_is_pillows_contain_and_pad(wh, size):
    frames = np.stack([photo_like(*wh, seed=s) for s in range(2)])
    got = letterbox_uint8(frames, size)
    for i in range(2):
        assert np.array_equal(got[i], upstream_multihmr(frames[i], size))
    x = letterbox_frames(list(frames), size)
    assert x.shape == (2, 3, size, size)
    assert np.array_equal(x[1].permute(1, 2, 0).numpy(), upstream_multihmr(frames[1], size) / np.float32(255))
