"""Audio synchronisation: each clip's offset from its sound (a clap, speech, music).

Each clip's first audio stream is decoded with PyAV and mixed to mono at its own rate (44.1,
48 kHz, ...). Its onset envelope is computed on the fly: the high-passed signal's energy in 1 ms
hops (exact in time at any rate, so no resampling), log-compressed, and the positive part of its change
(sound starting: a clap, a syllable, a note). Gains differ between cameras; the log makes the
envelope gain-free. Envelopes of two clips are cross-correlated (FFT), the peak is refined to a
fraction of a hop by a parabola through it and its neighbours. The confidence is the peak's
prominence, 1 - (highest correlation more than `EXCLUDE_S` from the peak) / peak, times its
significance, how far the peak stands above the correlation's spread (its z-score, mapped from
`Z_RANDOM` -> 0 to `Z_RANDOM + Z_SPAN` -> 1). Music with a steady beat correlates at every beat,
so its confidence is low unless something stands out; unrelated sounds score near 0.

Offsets follow `timeline.py`: the time in each clip that lines up with the common zero, here the
start of the clip that starts last (so all offsets are >= 0). Clip times are the container's
presentation times, shared by the audio and video streams.
"""

import dataclasses
import math
import os

import numpy as np

from ..errors import ChrommError

HOP_S = 0.001          # envelope hop: 1 ms
BAND_HZ = 8000.0       # the envelope's band: first zero of the moving average
EXCLUDE_S = 0.1        # the second peak is looked for farther than this from the first
MIN_CONFIDENCE = 0.25  # below: not usable on its own
Z_RANDOM, Z_SPAN = 6.0, 10.0  # peak height in standard deviations of the correlation: unrelated
                              # sounds reach about 7 (sparse onsets are heavy-tailed), matches 11+
MIN_OVERLAP_S = 1.0    # lags leaving less common sound than this are not considered


@dataclasses.dataclass
class AudioEnvelope:
    path: str
    start: float           # clip time of the first envelope hop, seconds
    envelope: np.ndarray   # onset strength per hop
    hop_s: float
    rate: int              # the stream's own sample rate

    @property
    def duration(self):
        return len(self.envelope) * self.hop_s


@dataclasses.dataclass
class AudioSync:
    offsets: list          # seconds per clip (None: no audio)
    confidence: list       # 0..1 per clip (1 for the reference), None without audio
    reference: int         # the clip the others were correlated with
    notes: list


def audio_envelope(path, hop_s=HOP_S, source=None):
    """The onset envelope of the first audio stream of `path`, or None when it has none.

    Streams: decoded audio is mixed to mono and turned into envelope hops about once a second
    of sound; only the envelope (1000 values per second) is kept. Hops are exact in time at any
    sample rate (the cumulative energy is interpolated at the hop boundaries), so no resampling
    is needed: 44.1 and 48 kHz clips give envelopes on the same 1 ms grid.
    """
    import av

    from .video import _av_message, av_errors

    try:  # `source`: what is read (a pinned descriptor's path); messages name `path`
        container = av.open(str(source or path), "r")
    except av_errors() as exc:
        raise ChrommError(f"{path}: not a file that can be read ({_av_message(exc)})") from None
    try:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = stream.rate or stream.codec_context.sample_rate
        state = _EnvelopeState(rate, hop_s)
        start, block, pending, fmt = None, [], 0, None
        try:
            for frame in container.decode(stream):
                if start is None and frame.pts is not None:
                    start = float(frame.pts * frame.time_base)
                    fmt = (frame.format.is_planar, len(frame.layout.channels))
                block.append(_samples(frame, fmt[0], fmt[1]))
                pending += frame.samples
                if pending >= rate:
                    state.add(_mono(block, *fmt))
                    block, pending = [], 0
        except av_errors() as exc:
            raise ChrommError(f"{path}: the audio cannot be decoded ({_av_message(exc)})") from None
        if block:
            state.add(_mono(block, *fmt))
    finally:
        container.close()
    energy = state.energy()
    if not len(energy):
        return None
    return AudioEnvelope(str(path), start or 0.0, onset_strength(energy), hop_s, int(rate))


_PLANAR = {"fltp": np.float32, "dblp": np.float64, "s16p": np.int16, "s32p": np.int32}


def _samples(frame, planar, channels):
    """A frame's samples (channels, n) for planar formats straight from its planes (faster than
    to_ndarray), else to_ndarray's interleaved (1, n * channels)."""
    dtype = _PLANAR.get(frame.format.name) if planar else None
    if dtype is None:
        return frame.to_ndarray()
    n = frame.samples
    return np.stack([np.frombuffer(plane, dtype=dtype, count=n) for plane in frame.planes[:channels]])


def _mono(arrays, planar, channels):
    """Decoded audio frames' arrays -> mono samples in [-1, 1] (float32: plenty for energies)."""
    a = np.concatenate(arrays, axis=1) if planar else np.concatenate(arrays, axis=1).reshape(-1, channels).T
    scale = float(np.iinfo(a.dtype).max) if a.dtype.kind in "iu" else 1.0
    mono = a[0].astype(np.float32) if len(a) == 1 else a.mean(axis=0, dtype=np.float32)
    return mono / np.float32(scale) if scale != 1.0 else mono


class _EnvelopeState:
    """Band-passed energy per hop of `hop_s` seconds, fed block by block: the samples averaged in
    groups of `rate / BAND_HZ` (a low-pass with its first zero at BAND_HZ, so microphone hiss near
    the Nyquist rate does not drown the onsets, and 6x less to compute), then the first
    difference (a high-pass) squared. The cumulative energy is interpolated at the hop
    boundaries, which are exact in time at any sample rate."""

    def __init__(self, rate, hop_s):
        self.rate, self.hop_s = float(rate), hop_s
        self.width = max(1, int(round(rate / BAND_HZ)))
        self.rest = np.zeros(0)  # samples not yet forming a whole group
        self.seen = 0            # samples in whole groups so far
        self.total = 0.0         # cumulative energy so far
        self.last = None         # last group mean (for the difference across blocks)
        self.boundary = 0        # index of the last hop boundary passed
        self.at_boundary = 0.0   # cumulative energy there
        self.parts = []

    def add(self, x):
        x = np.concatenate([self.rest, x]) if len(self.rest) else x
        m = len(x) // self.width * self.width
        self.rest = x[m:]
        if m == 0:
            return
        groups = x[:m].reshape(-1, self.width).mean(axis=1)
        d = np.diff(groups, prepend=groups[0] if self.last is None else self.last)
        self.last = float(groups[-1])
        cum = self.total + np.cumsum(d * d)
        ends = self.seen + self.width * np.arange(1, len(groups) + 1)  # sample position of each group's end
        end = self.seen + m
        k_hi = int(np.floor(end / (self.rate * self.hop_s)))
        if k_hi > self.boundary:
            bounds = np.arange(self.boundary + 1, k_hi + 1) * self.rate * self.hop_s
            values = np.interp(bounds, np.concatenate([[self.seen], ends]), np.concatenate([[self.total], cum]))
            self.parts.append(np.diff(values, prepend=self.at_boundary))
            self.at_boundary, self.boundary = float(values[-1]), k_hi
        self.total, self.seen = float(cum[-1]), end

    def energy(self):
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


def onset_strength(energy):
    """Per-hop energy -> onset strength: rises of the log energy (gain-free), zero mean."""
    floor = max(float(np.mean(energy)) * 1e-4, 1e-12)
    log = np.log(energy + floor)
    rise = np.maximum(np.diff(log, prepend=log[:1]), 0.0)
    rise -= rise.mean()
    std = rise.std()
    return rise / std if std > 0 else rise


def cross_correlation(a, b):
    """Full cross-correlation c[k] = sum_n a[n + k] b[n] by FFT, with its lags k."""
    n = len(a) + len(b) - 1
    nfft = 1 << max(n - 1, 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(a, nfft) * np.conj(np.fft.rfft(b, nfft)), nfft)
    corr = np.concatenate([c[nfft - (len(b) - 1):], c[:len(a)]]) if len(b) > 1 else c[:len(a)]
    return corr, np.arange(-(len(b) - 1), len(a))


def correlate(a, b, hop_s, max_lag_s=None, min_overlap_s=MIN_OVERLAP_S):
    """Lag (seconds, b -> a: an event at time t in b is at t + lag in a, counted from each
    envelope's start) maximising the cross-correlation, sub-hop by a parabola, and its confidence.

    Returns (lag_s, confidence, peak) or None when no lag leaves `min_overlap_s` of common sound.
    """
    corr, lags = cross_correlation(a, b)
    overlap = np.minimum(len(a), lags + len(b)) - np.maximum(0, lags)
    ok = overlap * hop_s >= min_overlap_s
    if max_lag_s is not None:
        ok &= np.abs(lags) * hop_s <= max_lag_s
    if not ok.any():
        return None
    score = np.where(ok, corr, -np.inf)
    i = int(np.argmax(score))
    peak = float(score[i])
    frac = 0.0
    if 0 < i < len(score) - 1 and np.isfinite(score[i - 1]) and np.isfinite(score[i + 1]):
        y0, y1, y2 = score[i - 1], score[i], score[i + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            frac = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    far = ok & (np.abs(lags - lags[i]) * hop_s > EXCLUDE_S)
    second = float(np.max(corr[far])) if far.any() else 0.0
    prominence = float(np.clip(1.0 - max(second, 0.0) / peak, 0.0, 1.0)) if peak > 0 else 0.0
    valid = corr[ok]
    z = (peak - valid.mean()) / valid.std() if valid.std() > 0 else 0.0
    confidence = prominence * float(np.clip((z - Z_RANDOM) / Z_SPAN, 0.0, 1.0))
    return (lags[i] + frac) * hop_s, confidence, peak


def sync_audio(paths, max_offset_s=None, envelopes=None, sources=None):
    """Offsets (seconds) of every clip from its audio, with a confidence each.

    Clips without audio (or whose audio cannot be decoded) get None and a note; a clip whose
    audio does not correlate gets its best guess with a low confidence and a note (never a
    silent wrong offset). `sources`: what to read for each path (pinned descriptors' paths).
    """
    paths = [str(p) for p in paths]
    sources = list(sources) if sources is not None else [None] * len(paths)
    failed = {}
    if envelopes is None:  # clips in parallel: FFmpeg and numpy release the GIL
        from concurrent.futures import ThreadPoolExecutor

        def envelope(i):
            try:
                return audio_envelope(paths[i], source=sources[i])
            except ChrommError as exc:
                failed[i] = str(exc)
                return None

        with ThreadPoolExecutor(max(1, min(len(paths), os.cpu_count() or 1))) as pool:
            envelopes = list(pool.map(envelope, range(len(paths))))
    envs = envelopes
    notes = [failed.get(i, f"{p}: no audio stream") for i, (p, e) in enumerate(zip(paths, envs)) if e is None]
    have = [i for i, e in enumerate(envs) if e is not None]
    offsets, confidence = [None] * len(paths), [None] * len(paths)
    if not have:
        return AudioSync(offsets, confidence, -1, notes + ["no clip has audio: audio sync is not possible"])
    ref = max(have, key=lambda i: envs[i].duration)
    rel = {ref: 0.0}
    confidence[ref] = 1.0
    for i in have:
        if i == ref:
            continue
        found = correlate(envs[i].envelope, envs[ref].envelope, envs[ref].hop_s, max_offset_s)
        if found is None:
            notes.append(f"{paths[i]}: its audio and {paths[ref]}'s do not overlap by {MIN_OVERLAP_S:g} s "
                         "at any offset in range")
            continue
        lag, conf, _ = found
        # event at t_ref (clip time) <-> t_i = t_ref + lag + (start_i - start_ref)
        rel[i] = lag + envs[i].start - envs[ref].start
        confidence[i] = conf
        if conf < MIN_CONFIDENCE:
            notes.append(f"{paths[i]}: audio correlates poorly with {paths[ref]}'s (confidence {conf:.2f}); "
                         "the offset is a guess")
    low = min(rel.values())
    for i, value in rel.items():
        offsets[i] = value - low
    return AudioSync(offsets, confidence, ref, notes)


def usable(result):
    """True when every clip has audio with a confident offset."""
    return all(o is not None for o in result.offsets) and all(
        c is not None and c >= MIN_CONFIDENCE for c in result.confidence)


def format_offset(seconds, fps=None):
    if seconds is None or not math.isfinite(seconds):
        return "-"
    text = f"{seconds:.4f} s"
    if fps:
        text += f" ({seconds * fps:.2f} frames)"
    return text
