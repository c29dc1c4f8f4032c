"""The member view benchmark's report: every target met or MISSED with its numbers, the
soak's growth from its baseline, and the chart made from the same results."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.load import LoadResult
from bench.measurements import Phase, Results, RssSample, Setup, Soak
from bench.member_view_report import report, soak_verdict, steady_state_verdicts
from bench.upstream_calls import UpstreamCalls


def load(latency_ms: float, count: int, seconds: float, errors: int = 0) -> LoadResult:
    outcomes: Counter[str] = Counter({"ok": count - errors})
    if errors:
        outcomes["timeout"] = errors
    return LoadResult(seconds, [latency_ms] * count, outcomes)


def phase(server: str, workers: int, clients: int, rps: float, latency_ms: float,
          calls: UpstreamCalls | None = None) -> Phase:  # fmt: skip
    return Phase(server, workers, clients, 100, load(latency_ms, 100, 100 / rps), 1500.0,
                 50.0, 120.0, calls)  # fmt: skip


def setup(soak_seconds: float = 300) -> Setup:
    return Setup(
        command="python -m bench.member_view",
        effective="python -m bench.member_view --latency-ms 20",
        started=datetime(2026, 1, 1, tzinfo=UTC),
        commit="abc1234",
        machine="2 CPUs",
        database="SQLite (a file)",
        latencies_ms={"commerce": 20.0, "cms": 5.0, "cdp": 20.0},
        soak_seconds=soak_seconds,
        soak_clients=64,
    )


def soak(seconds: float, rss: list[tuple[float, float]], errors: int = 0) -> Soak:
    return Soak(
        workers=2,
        clients=64,
        planned_seconds=seconds,
        load=load(200.0, 1000, seconds, errors),
        cpu_ms=1.0,
        client_cpu_ms=1.0,
        samples=[RssSample(t, mb) for t, mb in rss],
        calls=UpstreamCalls(commerce=1000, commerce_oauth=1, cms=2, cdp=30),
    )


ONE_CALL = UpstreamCalls(commerce=100, commerce_oauth=0, cms=0, cdp=40)
TWO_CALLS = UpstreamCalls(commerce=200, commerce_oauth=1, cms=0, cdp=0)


def results(soak_result: Soak | None, soak_seconds: float = 300) -> Results:
    phases = [
        phase("gateway", 2, 1, 40, 25.0, ONE_CALL),
        phase("gateway", 2, 16, 300, 55.0, TWO_CALLS),
        phase("bare", 2, 1, 200, 4.0),
        phase("bare", 2, 16, 500, 30.0),
    ]
    return Results(setup(soak_seconds), phases, soak_result, None)


def test_every_target_is_met_or_missed_with_its_numbers() -> None:
    text = report(results(soak(300, [(0, 300), (60, 400), (300, 420)])), "member_view.png")
    assert "- Command: `python -m bench.member_view`" in text
    assert "commerce 20 ms, cms 5 ms, cdp 20 ms" in text
    # upstream latency = the slowest upstream's
    assert (
        "- 2 workers, sequential: p50 25.0 ms, target at most 30 ms (upstream 20 + 10): met" in text
    )
    assert "- 2 workers, 16 clients: p99 55.0 ms, target under 60 ms (3 x upstream): met" in text
    assert "300 req/s is 0.60 of the bare ceiling (500), target at least 0.50: met" in text
    assert "![throughput and latency](member_view.png)" in text
    assert "| 2 workers, 16 clients | 100 | 2.00 | 0.00 | 0.00 | 200 / 0 / 0 | 1 |" in text
    assert "Not run (`--profile 0`)." in text


def test_steady_state_calls_per_view() -> None:
    lines = list(steady_state_verdicts(results(soak(300, [(0, 1), (60, 1), (300, 1)]))))
    assert lines[0] == (
        "- 2 workers, sequential: per view commerce 1.00 (target 1), CMS 0.000 (target 0: "
        "under 0.01), CDP 0.40 (target at most 1): met"
    )
    assert lines[1].endswith("MISSED") and "commerce 2.00" in lines[1]
    assert lines[2].startswith("- soak: per view commerce 1.00") and lines[2].endswith("met")


def test_soak_growth_is_from_the_first_sample_after_a_minute() -> None:
    result = soak(300, [(0, 300), (10, 380), (60, 400), (120, 410), (300, 420)])
    assert result.baseline == RssSample(60, 400)
    assert result.peak_mb == 420
    assert result.growth == pytest.approx(0.05)
    assert soak_verdict(results(result)) == (
        "- soak, 64 clients for 300 s: 1,000 requests, 0 errors (target none), memory "
        "growth +5.0% (target under 10%): met"
    )


def test_a_soak_with_errors_growth_or_too_short_is_missed() -> None:
    grew = soak(300, [(0, 300), (60, 400), (300, 450)])
    assert soak_verdict(results(grew)).endswith("growth +12.5% (target under 10%): MISSED")
    failed = soak(300, [(0, 300), (60, 400), (300, 400)], errors=3)
    assert "3 errors (target none)" in soak_verdict(results(failed))
    assert soak_verdict(results(failed)).endswith("MISSED")
    short = soak(15, [(0, 300), (10, 300), (15, 300)])
    assert short.baseline == RssSample(10, 300)  # a fifth of a short soak
    assert soak_verdict(results(short, soak_seconds=15)).endswith(
        ": MISSED (ran 15 s; the target is 300 s)"
    )
    assert soak_verdict(results(None)) == "- soak: not run (`--soak-seconds 0`): MISSED"
    flat = soak(300, [(0, 300), (60, 400.0), (300, 399.99)])
    assert "memory growth +0.0%" in soak_verdict(results(flat))  # not -0.0%


def test_the_chart_is_written_from_the_same_results(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from bench.chart import write_chart

    path = tmp_path / "member_view.png"
    assert write_chart(results(soak(300, [(0, 300), (60, 400), (300, 420)])), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
