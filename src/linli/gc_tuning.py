"""The cyclic garbage collector of a long-running process (the web app, the workers), set once it is up.

Two measures, both measured on the ingest of 500-event batches (2026-12-03; bench/README.md, "Reading the
figures"):

- freeze what start-up built (ORM mappers, pydantic models, the app): it lives as long as the process, and
  each full collection walked all of it (~100 ms a pass);
- collect the youngest generation after GEN0_THRESHOLD new container objects rather than CPython's 700.
  Ingest allocates dicts, tuples and models by the thousand per batch and frees nearly all of them by
  reference counting at once; the collector still ran about ten times per batch looking for cycles,
  2.3 ms of a 50 ms batch (8.4 ms without the freeze). At 20,000 it ran twice in 60 batches. Cycles that
  do form are still collected, a little later, at the cost of a few MB held in between.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 20_000
OLDER_THRESHOLDS = (20, 20)


def settle() -> None:
    """Freeze the objects alive now and raise the youngest generation's threshold (call once, when set up)."""
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, *OLDER_THRESHOLDS)
