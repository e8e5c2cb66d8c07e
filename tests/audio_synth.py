"""A sound scene in continuous time (a clap, speech-like bursts, music) heard by several cameras
that start recording at different times, at their own sample rates and gains, each with its own
microphone noise. Sampled exactly at each clip's sample times, so offsets are known to the
nanosecond whatever the rate."""
import numpy as np


class SoundScene:
    def __init__(self, duration, seed=0, clap_at=None, music=True, speech=True, clap=True):
        rng = np.random.default_rng(seed)
        self.duration = duration
        self.claps = [] if not clap else [clap_at if clap_at is not None else duration * 0.4]
        # a clap: broadband partials with random phases, 2 ms rise, 40 ms decay
        self.clap_f = rng.uniform(300, 7000, 120)
        self.clap_p = rng.uniform(0, 2 * np.pi, 120)
        # speech-like: syllables of 120-250 ms, voiced harmonics of a wandering pitch
        self.syllables = []
        if speech:
            t = rng.uniform(0.1, 0.6)
            while t < duration:
                self.syllables.append((t, rng.uniform(0.12, 0.25), rng.uniform(100, 220)))
                t += rng.uniform(0.2, 0.6)
        # music: a chord with a steady beat (notes every 0.5 s)
        self.music = music
        self.notes = rng.choice([220.0, 261.6, 329.6, 392.0, 440.0], size=int(duration * 2) + 2)

    def __call__(self, t):
        t = np.asarray(t, np.float64)
        out = np.zeros_like(t)
        lo, hi = (t.min(), t.max()) if len(t) else (0.0, 0.0)
        for c in self.claps:
            u = t - c
            env = np.where(u < 0, 0.0, np.minimum(u / 0.002, 1.0) * np.exp(-np.maximum(u, 0) / 0.04))
            on = env > 1e-6
            if on.any():
                out[on] += 0.8 * env[on] * np.sin(2 * np.pi * self.clap_f[:, None] * u[on] + self.clap_p[:, None]).mean(0) * 8
        for start, length, pitch in self.syllables:
            if start > hi or start + length < lo:
                continue
            on = (t >= start) & (t < start + length)
            if on.any():
                u = t[on] - start
                env = np.sin(np.pi * u / length) ** 2
                out[on] += 0.15 * env * sum(np.sin(2 * np.pi * pitch * k * u) / k for k in range(1, 6))
        if self.music:
            beat = np.floor(np.maximum(t, 0) * 2).astype(int)
            u = t - beat / 2.0
            f = self.notes[np.clip(beat, 0, len(self.notes) - 1)]
            out += 0.1 * np.exp(-u / 0.3) * (np.sin(2 * np.pi * f * t) + 0.5 * np.sin(2 * np.pi * 1.5 * f * t))
        return out

    def recording(self, start, length, rate, gain=1.0, noise=0.01, seed=1):
        """What a camera starting at scene time `start` records for `length` seconds."""
        rng = np.random.default_rng(seed)
        t = start + np.arange(int(length * rate)) / rate
        out = np.empty(len(t))
        for i in range(0, len(t), 1 << 16):
            out[i:i + (1 << 16)] = self(t[i:i + (1 << 16)])
        out = gain * out + noise * rng.standard_normal(len(t))
        return np.clip(out, -1, 1).astype(np.float32)
