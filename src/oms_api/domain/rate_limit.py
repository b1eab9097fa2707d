"""Token buckets: `rate` requests per second per key, bursts up to `burst`. Pure (the
clock is passed in)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TokenBuckets:
    rate: float
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key → (tokens, at)

    def take(self, key: str, now: float) -> float:
        """0 if the request may go ahead (one token taken), else seconds until it may."""
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
