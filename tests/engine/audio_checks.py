"""Assertions on recorded audio: duration, loudness and which tones it contains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def read_recording(path: str | Path) -> tuple[np.ndarray, int]:
    info = sf.info(str(path))
    assert info.format == "OGG" and info.subtype == "OPUS", (
        f"{path} is {info.format}/{info.subtype}"
    )
    data, rate = sf.read(str(path), dtype="float64")
    return data, rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def tone_level(samples: np.ndarray, rate: int, freq: float) -> float:
    """Magnitude of *freq* relative to the strongest spectral line (1.0 = the dominant tone)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > freq - 15) & (freqs < freq + 15)
    return float(spectrum[band].max() / spectrum.max())


def bitrate_kbps(path: str | Path, duration: float) -> float:
    return Path(path).stat().st_size * 8 / duration / 1000
