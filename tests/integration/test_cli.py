"""`python -m gateway ...` (the same as `patron ...`) as a subprocess, with a clean
environment: no `PATRON_*` but what each test sets, and a working directory without a
`.env` file."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from alembic.script import ScriptDirectory

from adapters.db.migrate import alembic_config
from adapters.db.tables import metadata
from gateway.schema import schema_sdl

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-test-secret-0123456789abcdef0123"


def patron(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    clean["PYTHONPATH"] = str(REPO_ROOT)  # this checkout, wherever pytest runs from
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- export-schema --------------------------------------------------------------------------
def test_export_schema_prints_the_sdl(tmp_path: Path) -> None:
    done = patron("export-schema", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == schema_sdl()
    assert done.stdout.endswith("}\n")
    assert "type Query {" in done.stdout and "type Mutation {" in done.stdout


def test_export_schema_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "out" / "schema.graphql"
    out.parent.mkdir()
    done = patron("export-schema", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert out.read_text(encoding="utf-8") == schema_sdl()


def test_export_schema_federation_writes_the_subgraph_schema(tmp_path: Path) -> None:
    out = tmp_path / "schema.federation.graphql"
    done = patron("export-schema", "--federation", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert out.read_text(encoding="utf-8") == schema_sdl(federation=True)
    assert schema_sdl(federation=True) != schema_sdl()
    assert out.read_text(encoding="utf-8") == (REPO_ROOT / "schema.federation.graphql").read_text(
        encoding="utf-8"
    )


# --- token --------------------------------------------------------------------------------
def test_token_signs_with_the_configured_secret(tmp_path: Path) -> None:
    before = int(time.time())
    done = patron(
        "token", "--sub", "x", "--role", "member", "--ttl", "60",
        cwd=tmp_path, env={"PATRON_JWT_SECRET": SECRET},
    )  # fmt: skip
    after = int(time.time())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    claims = jwt.decode(lines[0], SECRET, algorithms=["HS256"])
    assert set(claims) == {"sub", "roles", "iat", "exp"}
    assert claims["sub"] == "x"
    assert claims["roles"] == ["member"]
    assert before <= claims["iat"] <= after
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(lines[0])["alg"] == "HS256"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(lines[0], SECRET + "-other", algorithms=["HS256"])


def test_token_with_several_roles_a_store_issuer_and_audience(tmp_path: Path) -> None:
    done = patron(
        "token", "--sub", "assoc-9", "--role", "associate,member", "--role", "admin",
        "--store", "TOR-1",
        cwd=tmp_path,
        env={
            "PATRON_JWT_SECRET": SECRET,
            "PATRON_JWT_ISSUER": "https://patron.example",
            "PATRON_JWT_AUDIENCE": "patron-gateway",
        },
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(
        done.stdout.strip(),
        SECRET,
        algorithms=["HS256"],
        issuer="https://patron.example",
        audience="patron-gateway",
    )
    assert claims["roles"] == ["associate", "member", "admin"]
    assert claims["store"] == "TOR-1"
    assert claims["exp"] - claims["iat"] == 3600  # the default ttl


def test_token_signs_with_the_first_configured_algorithm(tmp_path: Path) -> None:
    secret = SECRET * 2  # 72 bytes: enough for HS512
    env = {"PATRON_JWT_SECRET": secret, "PATRON_JWT_ALGORITHMS": "HS512,HS256"}
    done = patron("token", "--sub", "x", "--role", "member", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert jwt.get_unverified_header(done.stdout.strip())["alg"] == "HS512"
    assert jwt.decode(done.stdout.strip(), secret, algorithms=["HS512"])["sub"] == "x"


def test_token_with_algorithms_of_both_families_exits_2(tmp_path: Path) -> None:
    env = {"PATRON_JWT_SECRET": SECRET, "PATRON_JWT_ALGORITHMS": "HS256,RS256"}
    done = patron("token", "--sub", "x", "--role", "member", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "RS256 cannot be verified with PATRON_JWT_SECRET" in done.stderr
    assert SECRET not in done.stderr


def test_token_without_a_secret_exits_2(tmp_path: Path) -> None:
    done = patron("token", "--sub", "x", "--role", "member", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == "patron: PATRON_JWT_SECRET is not set"


def test_token_ignores_a_secret_outside_the_environment_prefix(tmp_path: Path) -> None:
    done = patron(
        "token", "--sub", "x", "--role", "member", cwd=tmp_path, env={"JWT_SECRET": SECRET}
    )
    assert done.returncode == 2
    assert "PATRON_JWT_SECRET" in done.stderr


def test_token_reads_the_secret_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"PATRON_JWT_SECRET={SECRET}\n", encoding="utf-8")
    done = patron("token", "--sub", "x", "--role", "member", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert jwt.decode(done.stdout.strip(), SECRET, algorithms=["HS256"])["sub"] == "x"


def test_token_needs_sub_and_role(tmp_path: Path) -> None:
    env = {"PATRON_JWT_SECRET": SECRET}
    no_role = patron("token", "--sub", "x", cwd=tmp_path, env=env)
    no_sub = patron("token", "--role", "member", cwd=tmp_path, env=env)
    for done, missing in ((no_role, "--role"), (no_sub, "--sub")):
        assert done.returncode == 2  # argparse
        assert done.stdout == ""
        assert missing in done.stderr


# --- migrate ------------------------------------------------------------------------------
def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    return {name for (name,) in rows}


def _version(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [v for (v,) in conn.execute("SELECT version_num FROM alembic_version")]


def test_migrate_creates_the_tables_and_runs_twice(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    env = {"PATRON_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    expected = {t.name for t in metadata.sorted_tables} | {"alembic_version"}

    first = patron("migrate", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"patron: database is up to date (sqlite+aiosqlite:///{db})"
    assert _tables(db) == expected
    assert _version(db) == [head]

    second = patron("migrate", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert _tables(db) == expected
    assert _version(db) == [head]


def test_migrate_defaults_to_patron_db_in_the_working_directory(tmp_path: Path) -> None:
    done = patron("migrate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "patron.db").exists()
    assert "ledger_accounts" in _tables(tmp_path / "patron.db")


def test_migrate_hides_the_database_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://patron:s3cret-pw@127.0.0.1:1/patron"
    done = patron("migrate", cwd=tmp_path, env={"PATRON_DATABASE_URL": url}, timeout=120)
    assert done.returncode != 0  # nothing listens on port 1
    assert "s3cret-pw" not in done.stdout + done.stderr


# --- serve: an invalid start stops before serving -----------------------------------------
def _typo_program(tmp_path: Path) -> tuple[Path, int]:
    """Club Harry with silver's earn_multiplier misspelt; returns the file and that line."""
    source = (REPO_ROOT / "programs" / "club-harry.toml").read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    silver = lines.index('key = "silver"\n')
    line = next(i for i in range(silver, len(lines)) if lines[i].startswith("earn_multiplier = "))
    lines[line] = lines[line].replace("earn_multiplier", "earn_multipler")
    path = tmp_path / "typo.toml"
    path.write_text("".join(lines), encoding="utf-8")
    return path, line + 1


def test_serve_with_a_typo_in_the_program_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    program, line = _typo_program(tmp_path)
    done = patron(
        "serve", "--port", "1", cwd=tmp_path, env={"PATRON_PROGRAM": str(program)}, timeout=30
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"patron: invalid program file: {program}:{line}: ")
    assert "earn_multipler" in done.stderr
    assert "earn_multiplier" in done.stderr  # the suggestion
    assert "Uvicorn running" not in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_with_a_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    program = tmp_path / "broken.toml"
    program.write_text('key = "x"\nname = "X"\ncurrency = \n', encoding="utf-8")
    done = patron("serve", cwd=tmp_path, env={"PATRON_PROGRAM": str(program)}, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith(f"patron: invalid program file: {program}:3:")
    assert "not valid TOML" in done.stderr


def test_serve_with_a_missing_program_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    done = patron("serve", cwd=tmp_path, env={"PATRON_PROGRAM": str(missing)}, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == f"patron: invalid program file: {missing}: no such program file"


def test_serve_with_invalid_settings_exits_2(tmp_path: Path) -> None:
    done = patron(
        "serve",
        cwd=tmp_path,
        env={"PATRON_JWT_SECRET": SECRET, "PATRON_JWKS_URL": "https://idp.example/jwks"},
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("patron: invalid settings:")
    assert "PATRON_JWT_SECRET or PATRON_JWKS_URL, not both" in done.stderr
    assert SECRET not in done.stderr  # a secret is never echoed


# --- fakes: per-upstream latency and the request counts -----------------------------------
def test_fakes_delay_each_upstream_and_count_its_requests(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    argv = [sys.executable, "-m", "gateway", "fakes", "--port", str(port)]
    argv += ["--latency-ms", "0", "--cms-latency-ms", "300"]
    process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                counts = httpx.get(f"{base}/__patron/requests", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "fakes did not start"
                time.sleep(0.1)
        assert counts.json() == {"commerce": 0, "commerce_oauth": 0, "cms": 0, "cdp": 0}
        began = time.monotonic()
        assert httpx.get(f"{base}/cms/content/key/tiers/gold", timeout=10).status_code == 200
        assert time.monotonic() - began >= 0.3  # --cms-latency-ms, not --latency-ms 0
        assert httpx.get(f"{base}/__patron/requests", timeout=5).json()["cms"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)
