"""`patron jobs run pending|expiry` with the app's own services, idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from gateway.demo import Fakes, fake_upstream_env
from gateway.jobs import run_job
from gateway.settings import Settings
from tests.conftest import Clock, Harness
from tests.graphql.conftest import enroll, purchase

ROOT = Path(__file__).resolve().parents[2]


async def test_pending_then_expiry_jobs_are_idempotent(
    harness: Harness, settings: Settings, clock: Clock
) -> None:
    h = harness
    member = await enroll(h, "ava")
    await purchase(h, member, "o-1", "250.00")
    clock.advance(days=31)
    fakes = Fakes()
    http = fakes.http_client()
    assert await run_job(settings, "pending", http=http, clock=clock) == (
        "1 earns moved from pending to available"
    )
    assert await run_job(settings, "pending", http=http, clock=clock) == (
        "0 earns moved from pending to available"
    )
    clock.now = clock.now.replace(year=clock.now.year + 2) + timedelta(days=1)
    assert await run_job(settings, "expiry", http=http, clock=clock) == "250 points expired"
    assert await run_job(settings, "expiry", http=http, clock=clock) == "0 points expired"
    await http.aclose()


def test_the_cli_runs_a_job(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "jobs.db"
    db.write_bytes(sqlite_template.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "PATRON_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "PATRON_DEMO": "true",
        "PATRON_JWT_SECRET": "x",
        **fake_upstream_env(),
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "jobs", "run", "expiry"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "patron: expiry: 0 points expired"
