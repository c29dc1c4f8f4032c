"""`patron serve` freezes its heap once started and collects the youngest generation less
often (`gateway.gc_tuning`); an app built without `tune_gc` (the tests' apps) leaves the
collector as it is."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway import gc_tuning
from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from tests.conftest import Clock


@pytest.fixture
def untouched_collector() -> Iterator[tuple[int, int, int]]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield threshold
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.parametrize("tune", [True, False])
async def test_a_started_app_tunes_the_collector_only_when_asked(
    settings: Settings,
    fakes: Fakes,
    clock: Clock,
    tune: bool,
    untouched_collector: tuple[int, int, int],
) -> None:
    http = fakes.http_client()
    app = create_app(settings, http=http, clock=clock, tune_gc=tune)
    async with app.router.lifespan_context(app):
        frozen, threshold = gc.get_freeze_count(), gc.get_threshold()
    await http.aclose()
    if tune:
        assert frozen > 10_000  # the modules, the schema, the program: the start-up heap
        _youngest, *older = untouched_collector
        assert threshold == (gc_tuning.YOUNGEST_THRESHOLD, *older)
    else:
        assert (frozen, threshold) == (0, untouched_collector)


def test_the_uvicorn_factory_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import main

    asked: dict[str, object] = {}
    monkeypatch.setattr(main, "create_app", lambda settings, **kw: asked.update(kw))
    main.app_from_env()
    assert asked == {"tune_gc": True}
