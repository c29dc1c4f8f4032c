"""The garbage collector of a serving process.

A member view allocates thousands of container objects; most die by reference counting,
but at 16 or 64 views in flight each collection of the youngest generation finds many still
alive, promotes them, and every few hundred views a full collection walks the whole heap:
the modules, the schema and the program files included (about 140,000 objects after
start-up). Measured in process at 16 concurrent views: 1.4 s of collection per 960 views,
single pauses up to 180 ms, which is the tail of the latency.

After start-up `tune()` freezes what exists (it never becomes garbage: moved out of every
future collection) and raises the youngest generation's threshold, so collections run
less often over fewer objects: about a third of the collection time, pauses under 60 ms.
Only `patron serve` does this, once per worker: a test process that built many apps must
not freeze their garbage.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNGEST_THRESHOLD", "tune"]

YOUNGEST_THRESHOLD = 10_000  # allocations between collections of generation 0 (default 700)


def tune() -> None:
    gc.collect()  # what start-up left behind is collected before the rest is frozen
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_THRESHOLD, middle, oldest)
