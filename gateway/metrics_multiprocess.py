"""The folder of prometheus-client's multiprocess files, for `patron serve --workers N`.

Each worker writes its values to memory-mapped files there and `/metrics`, answered by any
worker, merges them (`gateway.metrics`). The folder must be empty when the workers start
(files of an earlier run would be counted again), and the variable must be in the
environment when prometheus-client is imported, which decides then how values are stored:
the CLI sets it before it starts the workers, fresh interpreters (uvicorn spawns them) that
inherit it.

A `PROMETHEUS_MULTIPROC_DIR` the operator set is used (its `*.db` files removed at start,
the folder kept); otherwise a temporary folder is made and removed at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["MULTIPROC_DIR_VARIABLE", "multiprocess_metrics"]

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def multiprocess_metrics() -> Iterator[Path]:
    given = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="patron-metrics-"))
    os.environ[MULTIPROC_DIR_VARIABLE] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)
