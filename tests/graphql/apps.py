"""A gateway through ASGI on SQLite with the fakes, for tests of the HTTP surface (protocol,
production mode, CORS, hostile requests) whose answers do not depend on the database: they
run once, not once per database backend."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.demo import Fakes
from gateway.settings import Settings
from tests.conftest import settings_for

BASE_URL = "http://patron.test"


def sqlite_settings(
    tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> Settings:
    path = tmp_path / "patron.db"
    shutil.copy(template, path)
    settings = settings_for(f"sqlite+aiosqlite:///{path}", monkeypatch)
    # Validated again, as the environment would be (PATRON_CORS_ORIGINS is split and checked).
    return Settings.model_validate({**settings.model_dump(), **overrides})


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    fakes = Fakes()
    http = fakes.http_client()
    app = create_app(settings, http=http)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                yield client
    finally:
        await http.aclose()
