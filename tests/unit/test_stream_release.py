"""A stream hands each item on and keeps no reference to it: a 50 MP frame (100 MB) lives only as long as its
analysis holds it, serial or on the pool (``station.pipeline.Stream``)."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import pytest

from station.pipeline import Pipeline


@pytest.mark.parametrize("workers", [0, 1])
def test_a_stream_lets_go_of_each_item_it_hands_on(workers: int) -> None:
    def analyse(items: Iterator[np.ndarray]) -> list[bool]:
        released = []
        for item in items:
            ref = weakref.ref(item)
            del item
            released.append(ref() is None)  # only the analysis held it
        return released

    with Pipeline(workers) as pool, pool.stream("frames", analyse) as stream:
        for k in range(3):
            stream.put(np.full((4, 4), k, dtype=np.uint16))
        assert stream.finish() == [True, True, True]
