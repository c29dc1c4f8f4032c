"""Serves a bare app for `bench.member_view` the way `patron serve` serves the gateway
(`gateway.workers.serve`: with several workers, one socket each), so that the ceiling and
the gateway spread their connections over their workers alike.

    python -m bench.bare_server bench.bare_app:app --port 8100 --workers 2
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from gateway.workers import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server")
    parser.add_argument("app", help="module:attribute, as uvicorn takes it")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        args.app, host=args.host, port=args.port, workers=args.workers, log_level="warning"
    )
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
