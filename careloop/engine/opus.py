"""Ogg/Opus recording encoder: libopus through ctypes plus a small Ogg muxer (RFC 7845).

Why not soundfile for writing: libsndfile encodes Opus at libopus' highest complexity and does
not let us change it; measured here that costs 20-35 ms of CPU per second of 8 kHz audio, i.e.
more than two cores for 250 recorded calls. libopus at complexity 1 costs about 1 ms per
second for the same bitrate, so this module encodes; soundfile (libsndfile) still reads the
files everywhere and is the fallback writer when libopus cannot be loaded. libopus is the
library libsndfile itself links, so it is present wherever soundfile works.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_SAMPLES = 480  # 60 ms: fewer encoder calls and Ogg packets than 20 ms, same quality
OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE = 4002
OPUS_SET_COMPLEXITY = 4010
OPUS_GET_LOOKAHEAD = 4027
OPUS_SET_SIGNAL = 4024
OPUS_SIGNAL_VOICE = 3001
DEFAULT_BITRATE = 12000
DEFAULT_COMPLEXITY = 1
PAGE_PACKETS = 50  # ~3 s of audio per Ogg page


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, no final xor)."""
    crc = 0
    table = _CRC
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ byte) & 0xFF]
    return crc


class OpusUnavailable(RuntimeError):
    """libopus could not be loaded."""


_lib: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("opus")
        if name is None:
            raise OpusUnavailable("libopus not found")
        lib = ctypes.CDLL(name)
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_create.argtypes = [
            ctypes.c_int32,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.opus_encode.restype = ctypes.c_int32
        lib.opus_encode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int32,
        ]
        lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_encoder_destroy.restype = None
        lib.opus_get_version_string.restype = ctypes.c_char_p
        _lib = lib
    return _lib


def available() -> bool:
    try:
        _load()
    except (OpusUnavailable, OSError):
        return False
    return True


class OggOpusWriter:
    """Writes mono 8 kHz s16le PCM as an Ogg/Opus file with exact length (granule trimming)."""

    def __init__(
        self, path: Path, *, bitrate: int = DEFAULT_BITRATE, complexity: int = DEFAULT_COMPLEXITY
    ) -> None:
        lib = _load()
        error = ctypes.c_int()
        self._lib = lib
        self._enc = lib.opus_encoder_create(
            SAMPLE_RATE, 1, OPUS_APPLICATION_VOIP, ctypes.byref(error)
        )
        if not self._enc or error.value != 0:
            raise OpusUnavailable(f"opus_encoder_create failed ({error.value})")
        ctl = lib.opus_encoder_ctl
        ctl(ctypes.c_void_p(self._enc), OPUS_SET_BITRATE, ctypes.c_int32(bitrate))
        ctl(ctypes.c_void_p(self._enc), OPUS_SET_COMPLEXITY, ctypes.c_int32(complexity))
        ctl(ctypes.c_void_p(self._enc), OPUS_SET_SIGNAL, ctypes.c_int32(OPUS_SIGNAL_VOICE))
        lookahead = ctypes.c_int32()
        ctl(ctypes.c_void_p(self._enc), OPUS_GET_LOOKAHEAD, ctypes.byref(lookahead))
        self.pre_skip = lookahead.value * (48000 // SAMPLE_RATE)
        self._file = open(path, "wb")
        self._serial = int.from_bytes(os.urandom(4), "little")
        self._page_seq = 0
        self._pending = bytearray()
        self._packets: list[bytes] = []
        self._granule = (
            0  # 48 kHz samples a decoder gets from the packets so far (pre-skip included)
        )
        self._samples = 0
        self._out = ctypes.create_string_buffer(4000)
        head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, self.pre_skip, SAMPLE_RATE, 0, 0)
        self._write_page([head], granule=0, bos=True)
        vendor = b"careloop-engine " + (lib.opus_get_version_string() or b"libopus")
        tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
        self._write_page([tags], granule=0)

    @property
    def samples(self) -> int:
        return self._samples

    def write(self, pcm: bytes) -> None:
        self._pending += pcm
        frame_bytes = FRAME_SAMPLES * 2
        while len(self._pending) >= frame_bytes:
            self._encode(bytes(self._pending[:frame_bytes]), FRAME_SAMPLES)
            del self._pending[:frame_bytes]

    def _encode(self, frame: bytes, real_samples: int) -> None:
        n = self._lib.opus_encode(self._enc, frame, FRAME_SAMPLES, self._out, len(self._out))
        if n < 0:
            raise RuntimeError(f"opus_encode failed ({n})")
        self._packets.append(self._out.raw[:n])
        self._samples += real_samples
        self._granule += FRAME_SAMPLES * (48000 // SAMPLE_RATE)
        if len(self._packets) >= PAGE_PACKETS:
            self._flush_page(eos=False, end_granule=None)

    def _flush_page(self, *, eos: bool, end_granule: int | None) -> None:
        granule = end_granule if end_granule is not None else self._granule
        self._write_page(self._packets, granule=granule, eos=eos)
        self._packets = []

    def _write_page(
        self, packets: list[bytes], *, granule: int, bos: bool = False, eos: bool = False
    ) -> None:
        lacing = bytearray()
        for packet in packets:
            size = len(packet)
            while size >= 255:
                lacing.append(255)
                size -= 255
            lacing.append(size)
        flags = (0x02 if bos else 0) | (0x04 if eos else 0)
        header = struct.pack(
            "<4sBBqIIIB", b"OggS", 0, flags, granule, self._serial, self._page_seq, 0, len(lacing)
        )
        page = bytearray(header + lacing + b"".join(packets))
        struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
        self._file.write(page)
        self._page_seq += 1

    def close(self) -> int:
        """Finish the stream; returns the number of audio samples in the file."""
        if self._samples == 0 and not self._pending:
            # An empty Opus stream cannot be read back; 20 ms of silence can
            self._pending += bytes(320)
        if self._pending:
            real = len(self._pending) // 2
            padded = bytes(self._pending) + bytes(FRAME_SAMPLES * 2 - len(self._pending))
            self._pending.clear()
            self._encode(padded, real)
        # The final granule position trims the padding so the decoded length is exact (RFC 7845 §4);
        # the decoder discards pre-skip samples first, so the packets must cover them as well
        end_granule = self.pre_skip + self._samples * (48000 // SAMPLE_RATE)
        while self._granule < end_granule:
            self._encode(bytes(FRAME_SAMPLES * 2), 0)
        self._flush_page(eos=True, end_granule=end_granule)
        self._file.close()
        self._lib.opus_encoder_destroy(self._enc)
        self._enc = None
        return self._samples


def encode_file(pcm_path: Path, ogg_path: Path, *, block: int = SAMPLE_RATE * 2 * 30) -> int:
    """Encode a raw s16le 8 kHz mono file; returns the samples written (at least one frame)."""
    tmp = ogg_path.with_name(ogg_path.name + ".tmp")
    writer = OggOpusWriter(tmp)
    try:
        if pcm_path.exists():
            with open(pcm_path, "rb") as src:
                while chunk := src.read(block):
                    writer.write(chunk[: len(chunk) // 2 * 2])
        samples = writer.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, ogg_path)
    return samples


def encode_recording(pcm_path: str, ogg_path: str) -> int:
    """Worker-process entry point: encode one recording (libopus, else libsndfile)."""
    if available():
        return encode_file(Path(pcm_path), Path(ogg_path))
    from careloop.engine.recorder import encode_with_soundfile

    return encode_with_soundfile(Path(pcm_path), Path(ogg_path))


def lower_priority() -> None:
    """Encoder processes yield the CPU to the engine, which must move RTP every 20 ms."""
    try:
        os.nice(10)
    except OSError:
        pass
