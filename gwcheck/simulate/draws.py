"""Random draws for the simulator, taken from the scenario's generator in blocks.

A scalar call into numpy's generator costs microseconds; a million packets need several million draws.
``Draws`` fetches uniform and normal variates a block at a time and hands them out one by one, so a draw
costs a list step.  Every value still follows from the seed alone.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

BLOCK = 1 << 16  # variates fetched from the generator at a time
T = TypeVar("T")


class Draws:
    """Uniform, integer, normal, lognormal and weighted draws from ``rng``, buffered."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._next_uniform: Callable[[], float] = iter(()).__next__
        self._next_normal: Callable[[], float] = iter(()).__next__

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        """A float in [low, high)."""
        try:
            value = self._next_uniform()
        except StopIteration:
            self._next_uniform = iter(self.rng.random(BLOCK).tolist()).__next__
            value = self._next_uniform()
        return low + (high - low) * value

    def normal(self) -> float:
        """A standard normal variate."""
        try:
            return self._next_normal()
        except StopIteration:
            self._next_normal = iter(self.rng.standard_normal(BLOCK).tolist()).__next__
            return self._next_normal()

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high) (ranges up to 2**32: a double's 53 bits keep them near uniform)."""
        return low + int((high - low) * self.uniform())

    def chance(self, probability: float) -> bool:
        return self.uniform() < probability

    def choice(self, items: Sequence[T]) -> T:
        return items[self.integer(0, len(items))]

    def lognormal(self, median: float, sigma: float) -> float:
        """A lognormal variate with the given median and shape."""
        return median * math.exp(sigma * self.normal())

    def weighted(self, weights: Sequence[float]) -> Callable[[], int]:
        """A function drawing an index with probability proportional to ``weights``."""
        cumulative = list(itertools.accumulate(weights))
        last = len(cumulative) - 1
        return lambda: min(bisect.bisect_right(cumulative, self.uniform(0.0, cumulative[-1])), last)
