"""The ASGI entry point for uvicorn: `uvicorn --factory gateway.main:app_from_env`."""

from __future__ import annotations

from starlette.applications import Starlette

from gateway.app import create_app
from gateway.settings import Settings


def app_from_env() -> Starlette:
    """The served gateway: settings from the environment, the collector tuned once started."""
    return create_app(Settings(), tune_gc=True)
