"""`patron`: serve, migrate, export-schema, token, backfill, trusted-documents, fakes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from gateway.upstreams import ConfigurationError
from loyalty.program import ProgramError

if TYPE_CHECKING:
    from gateway.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ProgramError as exc:
        print(f"patron: invalid program file: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"patron: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    except ConfigurationError as exc:
        print(f"patron: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patron", description="The Patron loyalty gateway.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--demo",
        action="store_true",
        help="SQLite, in-process fakes with demo data, a demo secret; prints tokens",
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(run=_migrate)

    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("-o", "--output", type=Path, help="write to this file instead")
    export.add_argument(
        "--federation",
        action="store_true",
        help="the Apollo Federation 2 subgraph schema (as with PATRON_FEDERATION=true)",
    )
    export.set_defaults(run=_export_schema)

    token = commands.add_parser(
        "token",
        help="sign a bearer token with PATRON_JWT_SECRET (and the first PATRON_JWT_ALGORITHMS)",
    )
    token.add_argument("--sub", required=True, help="subject: a member's commerce customer id")
    token.add_argument("--role", action="append", required=True, help="repeat for several")
    token.add_argument("--ttl", type=int, default=3600, help="seconds")
    token.add_argument("--store", help="an associate's store")
    token.set_defaults(run=_token)

    backfill = commands.add_parser(
        "backfill", help="retroactive points from the commerce order history"
    )
    backfill.add_argument(
        "--since", required=True, type=_date, help="orders created on or after YYYY-MM-DD"
    )
    backfill.add_argument("--page-size", type=int, default=100, help="orders per page (1-500)")
    backfill.add_argument(
        "--restart",
        action="store_true",
        help="ignore this --since's checkpoint and walk from the date again (earns nothing twice)",
    )
    backfill.set_defaults(run=_backfill)

    jobs = commands.add_parser("jobs", help="scheduled jobs (idempotent, cron-able)")
    job_commands = jobs.add_subparsers(dest="job_command", required=True)
    run_job = job_commands.add_parser("run", help="run one job now")
    from gateway.jobs import JOBS

    run_job.add_argument("name", choices=sorted(JOBS))
    run_job.set_defaults(run=_jobs_run)

    documents = commands.add_parser(
        "trusted-documents",
        help="write the manifest of trusted documents from the examples (examples/*/*.graphql)",
    )
    documents.add_argument("--examples", type=Path, help="the folder of .graphql examples")
    documents.add_argument("-o", "--output", type=Path, help="the manifest (JSON) to write")
    documents.add_argument(
        "--check", action="store_true", help="only say whether the manifest is current (exit 1)"
    )
    documents.set_defaults(run=_trusted_documents)

    fakes = commands.add_parser("fakes", help="serve the fake upstreams (demo data) over HTTP")
    fakes.add_argument("--host", default="127.0.0.1")
    fakes.add_argument("--port", type=int, default=9100)
    fakes.add_argument("--latency-ms", type=float, default=0.0, help="per upstream request")
    for upstream in ("commerce", "cms", "cdp"):
        fakes.add_argument(
            f"--{upstream}-latency-ms",
            type=float,
            default=None,
            help=f"per {upstream} request (default: --latency-ms)",
        )
    fakes.set_defaults(run=_fakes)
    return parser


def _trusted_documents(args: argparse.Namespace) -> int:
    from gateway.trusted_documents.manifest import (
        DEFAULT_MANIFEST,
        EXAMPLES_DIR,
        ManifestError,
        build_manifest,
        manifest_text,
    )

    examples: Path = args.examples or EXAMPLES_DIR
    output: Path = args.output or (examples / DEFAULT_MANIFEST.name)
    try:
        manifest = build_manifest(examples)
    except ManifestError as exc:
        print(f"patron: {exc}", file=sys.stderr)
        return 2
    text = manifest_text(manifest)
    current = output.read_text(encoding="utf-8") if output.exists() else None
    if args.check:
        if current != text:
            print(f"patron: {output} is stale: run `patron trusted-documents`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        output.write_text(text, encoding="utf-8")
    print(f"{output}: {len(manifest)} documents")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.demo:
        from gateway import demo

        os.environ["PATRON_DEMO"] = "true"
        os.environ.setdefault("PATRON_DATABASE_URL", demo.DEMO_DATABASE_URL)
        if not os.environ.get("PATRON_JWKS_URL"):
            os.environ.setdefault("PATRON_JWT_SECRET", demo.DEMO_JWT_SECRET)
        os.environ.setdefault("PATRON_CARD_SECRET", demo.DEMO_CARD_SECRET)
        os.environ.setdefault("PATRON_WEBHOOK_SECRET", demo.DEMO_WEBHOOK_SECRET)
        os.environ.setdefault("PATRON_CDP_WEBHOOK_SECRET", demo.DEMO_WEBHOOK_SECRET)
        os.environ.setdefault("PATRON_CMS_WEBHOOK_SECRET", demo.DEMO_WEBHOOK_SECRET)
        for key, value in demo.fake_upstream_env().items():
            os.environ.setdefault(key, value)
        if args.workers != 1:
            print("patron: --demo runs one worker (its fakes live in process)", file=sys.stderr)
            args.workers = 1
    with contextlib.ExitStack() as stack:
        if args.workers > 1:
            # Before prometheus-client is imported (create_app): it decides then.
            from gateway.metrics_multiprocess import multiprocess_metrics

            stack.enter_context(multiprocess_metrics())
        from gateway.settings import Settings

        settings = Settings()
        from gateway.app import create_app
        from gateway.logs import log_config

        create_app(settings)  # validate the program and settings before forking workers
        if settings.demo:
            _print_demo_banner(settings, args.host, args.port)
        config = uvicorn.Config(
            "gateway.main:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="info",
            # Every line with its request id, as text or JSON; the access lines are the
            # gateway's own (gateway.observed_requests): uvicorn's hold the query string.
            log_config=log_config(log_format=settings.effective_log_format),
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=settings.shutdown_grace,
        )
        from gateway.workers import serve

        return serve(config)


def _print_demo_banner(settings: Settings, host: str, port: int) -> None:
    from gateway import demo
    from gateway.auth import issue_token

    def sign(sub: str, role: str, store: str | None = None) -> str:
        """A week-long token the gateway accepts (its algorithm, issuer and audience)."""
        return issue_token(
            settings.jwt_secret_value, sub, [role], ttl=7 * 24 * 3600, store=store,
            issuer=settings.jwt_issuer, audience=settings.jwt_audience,
            algorithm=settings.jwt_accepted_algorithms[0],
        )  # fmt: skip

    ava = demo.DEMO_CUSTOMERS[0]
    associate, store = demo.DEMO_ASSOCIATE
    rows = [
        ("member", f"{ava.first_name} {ava.last_name} ({ava.commerce_id})", ava.commerce_id, None),
        ("associate", f"{associate} at {store}", associate, store),
        ("marketer", demo.DEMO_MARKETER, demo.DEMO_MARKETER, None),
        ("service", f"{demo.DEMO_SERVICE} (POS)", demo.DEMO_SERVICE, None),
    ]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(
        "\nPatron demo: Club Harry on SQLite, fake commercetools, Amplience and Segment in "
        "process.\n"
        f"  GraphiQL:  http://{shown}:{port}/graphql"
    )
    if settings.jwt_secret is None:  # PATRON_JWKS_URL: only its identity provider signs
        print("  Tokens: from the identity provider behind PATRON_JWKS_URL")
    else:
        print(
            '  Tokens (7 days; paste into GraphiQL\'s Headers as {"Authorization": "Bearer ..."}):'
        )
        for role, who, sub, role_store in rows:
            print(f"    {role:<10} {who}")
            print(f"    {role:<10} Bearer {sign(sub, role, role_store)}")
    print(
        "  Try:  { me { externalIds { commerceCustomerId } points { available pending } "
        "tier { current { name } } cart { total { amount currencyCode } pointsPreview } } }\n",
        flush=True,
    )


def _migrate(args: argparse.Namespace) -> int:
    from adapters.db.migrate import upgrade
    from gateway.settings import Settings

    settings = Settings()
    upgrade(settings.database_url)
    print(f"patron: database is up to date ({_redacted(settings.database_url)})")
    return 0


def _export_schema(args: argparse.Namespace) -> int:
    from gateway.schema import schema_sdl

    sdl = schema_sdl(federation=args.federation)
    if args.output:
        args.output.write_text(sdl, encoding="utf-8")
    else:
        sys.stdout.write(sdl)
    return 0


def _token(args: argparse.Namespace) -> int:
    from gateway.auth import issue_token
    from gateway.settings import Settings

    settings = Settings()
    if settings.jwt_secret is None:
        print("patron: PATRON_JWT_SECRET is not set", file=sys.stderr)
        return 2
    roles = [r for value in args.role for r in value.split(",") if r]
    print(
        issue_token(
            settings.jwt_secret.get_secret_value(),
            args.sub,
            roles,
            ttl=args.ttl,
            store=args.store,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithm=settings.jwt_accepted_algorithms[0],
        )
    )
    return 0


def _date(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _backfill(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.backfill import print_progress, run_backfill
    from gateway.settings import Settings
    from gateway.upstreams import ConfigurationError
    from loyalty.errors import UpstreamError

    if not 1 <= args.page_size <= 500:
        print("patron: --page-size must be between 1 and 500", file=sys.stderr)
        return 2
    settings = Settings()
    try:
        report = asyncio.run(
            run_backfill(
                settings,
                args.since,
                page_size=args.page_size,
                restart=args.restart,
                progress=print_progress,
            )
        )
    except ConfigurationError as exc:
        print(f"patron: {exc}", file=sys.stderr)
        return 2
    except UpstreamError as exc:
        print(
            f"patron: backfill stopped, {exc} (the checkpoint is kept: run it again to resume)",
            file=sys.stderr,
        )
        return 1
    print(report.summary(), flush=True)
    return 0


def _jobs_run(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.jobs import JobFailed, run_job
    from gateway.settings import Settings

    try:
        print(f"patron: {args.name}: {asyncio.run(run_job(Settings(), args.name))}")
    except JobFailed as exc:
        print(f"patron: {args.name}: failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _fakes(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.demo import Fakes, seed_fakes

    fakes = Fakes()
    seed_fakes(fakes)
    fakes.set_latency(**fake_latencies(args))
    uvicorn.run(fakes.app(), host=args.host, port=args.port, log_level="warning")
    return 0


def fake_latencies(args: argparse.Namespace) -> dict[str, float]:
    """Seconds of delay per upstream from `patron fakes`'s flags: `--<upstream>-latency-ms`
    where given, else `--latency-ms`."""
    latencies: dict[str, float] = {}
    for upstream in ("commerce", "cms", "cdp"):
        given = getattr(args, f"{upstream}_latency_ms")
        latencies[upstream] = (args.latency_ms if given is None else given) / 1000
    return latencies


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
