"""Counter-based random numbers: every draw is a pure function of (seed, split, sample index, stream, k).

Salmon, Moraes, Dror, Shaw. "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011 — the counter-based idea;
the mixing function is Wellons' 32-bit integer hash ("lowbias32" family, hash-prospector), with both multipliers
below 2³¹ so that every product of a 32-bit value fits in int64 without overflow.

Nothing is stateful: a batch of indices gets its numbers in one vectorised pass, in any order or batching, on
any device, and the same sample always gets the same numbers. No global RNG is touched.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import torch
from torch import Tensor

_MASK32 = 0xFFFFFFFF
_MULTIPLIER_1 = 0x21F0AAAD
_MULTIPLIER_2 = 0x735A2D97


def hash32(x: Tensor) -> Tensor:
    """Bijective mix of int64 values in [0, 2³²) to int64 values in [0, 2³²) (same shape and device)."""
    x = x ^ (x >> 16)
    x = (x * _MULTIPLIER_1) & _MASK32
    x = x ^ (x >> 15)
    x = (x * _MULTIPLIER_2) & _MASK32
    return x ^ (x >> 15)


@lru_cache(maxsize=1024)
def _hash_int(value: int) -> int:
    """hash32 of one Python int (the same function, on the host)."""
    return int(hash32(torch.tensor(value & _MASK32, dtype=torch.int64)))


def sample_keys(seed: int, split_salt: int, indices: Tensor) -> Tensor:
    """[B] int64 keys in [0, 2³²), one per sample index: distinct indices give distinct keys (a bijection)."""
    base = _hash_int(_hash_int(seed) ^ split_salt)
    return hash32(indices.long() ^ base)


class CounterRandom:
    """Named streams of per-sample random numbers for a batch of sample keys.

    ``stream`` names a quantity ("scale", "bg_colour", …); its numbers depend on the sample key and the name
    only, so adding a stream never changes the numbers of another.
    """

    def __init__(self, keys: Tensor) -> None:
        self.keys = keys
        self.device = keys.device

    def bits(self, stream: str, count: int | None = None) -> Tensor:
        """Uniform int64 in [0, 2³²): shape [B] (count None) or [B, count]."""
        stream_key = hash32(self.keys ^ _stream_salt(stream))
        if count is None:
            return stream_key
        return hash32(stream_key[:, None] ^ torch.arange(count, device=self.device))

    def uniform(self, stream: str, count: int | None = None, low: float = 0.0, high: float = 1.0) -> Tensor:
        """float32 in [low, high): shape [B] or [B, count]."""
        return low + (high - low) * to_unit(self.bits(stream, count))

    def integers(self, stream: str, high: int, count: int | None = None) -> Tensor:
        """int64 uniform in {0, …, high − 1} (high < 2³¹): shape [B] or [B, count]."""
        return (self.bits(stream, count) * high) >> 32

    def bernoulli(self, stream: str, p: float, count: int | None = None) -> Tensor:
        """bool, True with probability p: shape [B] or [B, count]."""
        return self.uniform(stream, count) < p


@lru_cache(maxsize=1024)
def _stream_salt(stream: str) -> int:
    return _hash_int(zlib.crc32(stream.encode()))


def to_unit(bits: Tensor) -> Tensor:
    """int64 in [0, 2³²) → float32 in [0, 1), exactly: the top 24 bits scaled by 2⁻²⁴."""
    return (bits >> 8).float() * (1.0 / (1 << 24))
