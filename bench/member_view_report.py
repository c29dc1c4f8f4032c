"""The member view benchmark's markdown report, and its verdicts against issue 5's targets.

Made from one `Results` (the chart is made from the same): the header says how the run was
made, then the load table, upstream calls per view, the soak, where the CPU goes, the
targets (each met or MISSED, with its numbers) and every outcome other than ok.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.cpu_profile import CpuProfile, not_ok
from bench.load import NOT_RUN, OK
from bench.measurements import BARE, BARE_CACHED, Phase, Results, Soak
from bench.upstream_calls import UpstreamCalls

SOAK_TARGET_SECONDS = 300.0
SOAK_GROWTH_TARGET = 0.10
CMS_CALLS_TARGET = 0.01  # "no CMS call": background cache refreshes are not per view
COMMERCE_CALLS_TARGET = 1.0
CDP_CALLS_TARGET = 1.0
RATIO_TARGET = 0.5


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def signed_percent(value: float) -> str:
    """+1.2% or -1.2%; never "-0.0%" for a change that rounds to nothing."""
    return f"{0.0 if round(value, 3) == 0 else value:+.1%}"


def phase_name(workers: int, clients: int) -> str:
    mode = "sequential" if clients == 1 else f"{clients} clients"
    return f"{workers} worker{'s' if workers > 1 else ''}, {mode}"


# --- tables -------------------------------------------------------------------------------
def load_table(results: Results) -> str:
    lines = [
        "| server | workers | clients | requests | errors | req/s | p50 ms | p95 ms | p99 ms "
        "| server CPU ms/req | client CPU ms/req | peak RSS MB | vs bare req/s "
        "| vs bare+caches req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for p in results.phases:
        ratios = []
        for server in (BARE, BARE_CACHED):
            ceiling = results.bare(p.workers, p.clients, server)
            ok = p.server == "gateway" and ceiling is not None and ceiling.rps > 0
            ratios.append(f"{p.rps / ceiling.rps:.2f}" if ok and ceiling else "")
        lines.append(
            f"| {p.server} | {p.workers} | {p.clients} | {p.sent} | {p.load.errors} "
            f"| {p.rps:,.0f} | {p.percentile(50):.1f} | {p.percentile(95):.1f} "
            f"| {p.percentile(99):.1f} | {p.cpu_per_request:.2f} "
            f"| {p.client_cpu_per_request:.2f} | {p.peak_rss_mb:.0f} | {ratios[0]} | {ratios[1]} |"
        )
    return "\n".join(lines)


def _calls_row(name: str, views: int, calls: UpstreamCalls) -> str:
    per = calls.per_view(views)
    return (
        f"| {name} | {views} | {per['commerce']:.2f} | {per['cms']:.2f} | {per['cdp']:.2f} "
        f"| {calls.commerce} / {calls.cms} / {calls.cdp} | {calls.commerce_oauth} |"
    )


def calls_table(results: Results) -> str:
    lines = [
        "| phase | member views | commerce/view | CMS/view | CDP/view "
        "| calls (commerce / CMS / CDP) | commerce token grants |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in results.gateway:
        if p.calls is not None:
            lines.append(_calls_row(phase_name(p.workers, p.clients), p.sent, p.calls))
    soak = results.soak
    if soak is not None and soak.calls is not None:
        lines.append(_calls_row(f"soak, {phase_name(soak.workers, soak.clients)}",
                                soak.load.sent, soak.calls))  # fmt: skip
    return "\n".join(lines)


def soak_section(soak: Soak | None, planned: float) -> str:
    if soak is None:
        return "Not run (`--soak-seconds 0`)."
    base, end = soak.baseline, soak.end
    growth = soak.growth
    rows = [
        "| workers | clients | seconds | requests | errors | req/s | p50 ms | p99 ms "
        "| RSS at baseline MB | RSS at end MB | peak RSS MB | growth |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {soak.workers} | {soak.clients} | {soak.load.seconds:.0f} | {soak.load.sent} "
        f"| {soak.load.errors} | {soak.rps:,.0f} | {soak.percentile(50):.1f} "
        f"| {soak.percentile(99):.1f} "
        f"| {f'{base.rss_mb:.0f} (at {base.seconds:.0f} s)' if base else 'n/a'} "
        f"| {f'{end.rss_mb:.0f}' if end else 'n/a'} | {soak.peak_mb:.0f} "
        f"| {signed_percent(growth) if growth is not None else 'n/a'} |",
    ]
    samples = ", ".join(f"{s.seconds:.0f} s {s.rss_mb:.0f}" for s in soak.samples)
    return "\n".join(
        [
            f"{soak.clients} clients against the gateway with {soak.workers} worker(s) for "
            f"{planned:g} s, after its load phases (so it starts warm). RSS is the server "
            "tree's current resident memory (VmRSS summed over uvicorn's parent and "
            "workers), sampled every 10 s; growth = (end - baseline) / baseline, the baseline "
            "being the first sample after the first minute (after a fifth of a shorter "
            "soak). Errors are requests with any outcome other than ok.",
            "",
            *rows,
            "",
            f"RSS samples (MB): {samples}.",
        ]
    )


def profile_section(profile: CpuProfile | None) -> str:
    if profile is None:
        return "Not run (`--profile 0`)."
    o, c = profile.overhead, profile.calibrated
    packages = [
        "| package | calls/view | CPU ms/view | share | share as recorded | |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        *(
            f"| {s.package} | {s.calls_per_view:,.0f} | {s.ms_per_view:.2f} | {s.share:.1%} "
            f"| {s.raw_share:.1%} | {s.note} |"
            for s in profile.packages
        ),
    ]
    top = [
        "| # | function | package | own ms/view | as recorded | share | calls/view |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {i} | `{f.function}` | {f.package} | {f.ms_per_view:.3f} "
            f"| {f.raw_ms_per_view:.3f} | {f.share:.1%} | {f.calls_per_view:,.1f} |"
            for i, f in enumerate(profile.top, start=1)
        ),
    ]
    failed = ", ".join(f"{k} {v}" for k, v in not_ok(profile.outcomes)) or "none"
    return "\n".join(
        [
            f"{profile.views} member views in this process, {profile.clients} at a time, "
            "against `gateway.app.create_app(Settings(...))` with the served gateway's "
            "settings (the same database, the fakes over real HTTP), sent to the ASGI app "
            "directly (no HTTP server, no client library), after a warm-up; then as many "
            "under cProfile, on CPU time, in every thread (aiosqlite's included). Views "
            f"other than ok: {failed}.",
            "",
            f"- Without the profiler: **{profile.cpu_ms_per_view:.2f} ms CPU per view** (this "
            "process, all threads, the in-process driver's few lines included).",
            f"- Under cProfile: {profile.raw_ms_per_view:.2f} ms per view recorded, "
            f"{profile.calls_per_view:,.0f} calls per view, {profile.threads} threads "
            "profiled besides the event loop's.",
            "- The profiler's own cost, taken out: recorded less measured without it, over "
            f"the calls, assumed the same for every call: {o.python_callee * 1e9:.0f} + "
            f"{o.python_caller * 1e9:.0f} ns per Python call (recorded in the callee + in "
            f"the caller), {o.c_callee * 1e9:.0f} + {o.c_caller * 1e9:.0f} ns per C call, "
            "split as a tight loop just before split it (there "
            f"{c.python_callee * 1e9:.0f} + {c.python_caller * 1e9:.0f} and "
            f"{c.c_callee * 1e9:.0f} + {c.c_caller * 1e9:.0f} ns). What is left: "
            f"{profile.ms_per_view:.2f} ms per view. The tables are after the correction; "
            "the shares as recorded overstate the packages of many tiny calls.",
            "",
            "Own time by package (a C function's goes to its callers' packages):",
            "",
            *packages,
            "",
            "Top functions by own time (each resumption of a coroutine counts as a call):",
            "",
            *top,
        ]
    )


# --- verdicts -----------------------------------------------------------------------------
def latency_verdicts(results: Results) -> Iterable[str]:
    upstream = results.setup.upstream_ms
    for p in results.gateway:
        name = phase_name(p.workers, p.clients)
        if p.clients == 1:
            p50 = p.percentile(50)
            yield (
                f"- {name}: p50 {p50:.1f} ms, target at most {upstream + 10:g} ms "
                f"(upstream {upstream:g} + 10): {verdict(p50 <= upstream + 10)}"
            )
        if p.clients == 16:
            p99 = p.percentile(99)
            yield (
                f"- {name}: p99 {p99:.1f} ms, target under {3 * upstream:g} ms "
                f"(3 x upstream): {verdict(p99 < 3 * upstream)}"
            )


def throughput_verdicts(results: Results) -> Iterable[str]:
    for p in results.gateway:
        ceiling = results.bare(p.workers, p.clients)
        if p.clients > 1 and ceiling and ceiling.rps:
            ratio = p.rps / ceiling.rps
            cached = results.bare(p.workers, p.clients, BARE_CACHED)
            stricter = (
                f" (and {p.rps / cached.rps:.2f} of strawberry with its caches, {cached.rps:,.0f})"
                if cached and cached.rps
                else ""
            )
            yield (
                f"- {phase_name(p.workers, p.clients)}: {p.rps:,.0f} req/s is {ratio:.2f} of "
                f"the bare ceiling ({ceiling.rps:,.0f}), target at least {RATIO_TARGET:.2f}: "
                f"{verdict(ratio >= RATIO_TARGET)}{stricter}"
            )


def _calls_verdict(name: str, views: int, calls: UpstreamCalls) -> str:
    per = calls.per_view(views)
    ok = (
        per["cms"] < CMS_CALLS_TARGET
        and round(per["commerce"], 2) <= COMMERCE_CALLS_TARGET
        and round(per["cdp"], 2) <= CDP_CALLS_TARGET
    )
    return (
        f"- {name}: per view commerce {per['commerce']:.2f} (target 1), CMS "
        f"{per['cms']:.3f} (target 0: under {CMS_CALLS_TARGET}), CDP {per['cdp']:.2f} "
        f"(target at most 1): {verdict(ok)}"
    )


def steady_state_verdicts(results: Results) -> Iterable[str]:
    measured = [(phase_name(p.workers, p.clients), p.sent, p.calls) for p in results.gateway]
    if results.soak is not None:
        measured.append(("soak", results.soak.load.sent, results.soak.calls))
    for name, views, calls in measured:
        if calls is None:
            yield f"- {name}: the fakes' request counts could not be read: MISSED"
        else:
            yield _calls_verdict(name, views, calls)


def soak_verdict(results: Results) -> str:
    soak, planned = results.soak, results.setup.soak_seconds
    if soak is None:
        return "- soak: not run (`--soak-seconds 0`): MISSED"
    growth = soak.growth
    growth_text = signed_percent(growth) if growth is not None else "not measurable"
    ok = soak.load.errors == 0 and growth is not None and growth < SOAK_GROWTH_TARGET
    short = planned < SOAK_TARGET_SECONDS
    tail = f" (ran {planned:g} s; the target is {SOAK_TARGET_SECONDS:g} s)" if short else ""
    return (
        f"- soak, {soak.clients} clients for {soak.load.seconds:.0f} s: {soak.load.sent:,} "
        f"requests, {soak.load.errors} errors (target none), memory growth {growth_text} "
        f"(target under {SOAK_GROWTH_TARGET:.0%}): {verdict(ok and not short)}{tail}"
    )


def targets_section(results: Results) -> str:
    upstream = results.setup.upstream_ms
    return "\n".join(
        [
            f"Upstream latency for the targets: {upstream:g} ms, the slowest upstream's (a "
            "view's upstream calls run in parallel). Steady state is judged per gateway "
            "phase, after the warm-up: CMS under "
            f"{CMS_CALLS_TARGET} calls per view (a background refresh of the cache is not "
            "per view), commerce at most 1, CDP at most 1 (OAuth token grants not counted).",
            "",
            "Latency:",
            "",
            *latency_verdicts(results),
            "",
            "Throughput:",
            "",
            *throughput_verdicts(results),
            "",
            "Steady state upstream calls:",
            "",
            *steady_state_verdicts(results),
            "",
            "Soak:",
            "",
            soak_verdict(results),
        ]
    )


def outcomes_line(results: Results) -> str:
    parts: list[str] = []
    for p in results.phases:
        odd = {k: v for k, v in p.outcomes.items() if k != OK}
        if odd:
            listed = ", ".join(f"{k} {v}" for k, v in sorted(odd.items()))
            parts.append(f"{p.server} {phase_name(p.workers, p.clients)}: {listed}")
    if results.soak is not None:
        odd = {k: v for k, v in results.soak.load.outcomes.items() if k != OK}
        if odd:
            parts.append("soak: " + ", ".join(f"{k} {v}" for k, v in sorted(odd.items())))
    return "; ".join(parts) or "none"


# --- the whole report ---------------------------------------------------------------------
def header(results: Results) -> str:
    s = results.setup
    latencies = ", ".join(f"{name} {ms:g} ms" for name, ms in s.latencies_ms.items())
    return "\n".join(
        [
            "# Member view",
            "",
            f"- Command: `{s.command}`",
            f"- Every option: `{s.effective}`",
            f"- When: {s.started:%Y-%m-%d %H:%M} UTC, commit {s.commit}",
            f"- Machine: {s.machine}",
            f"- Database: {s.database}",
            f"- Upstream latency per request: {latencies} (`patron fakes "
            "--<upstream>-latency-ms`; commerce's OAuth token grant is not delayed)",
            "- Servers: the gateway is `patron serve --workers N` (uvicorn; uvloop and "
            "httptools when installed), its upstreams the fakes, no Redis (each worker caches "
            "CMS content and CDP profiles in process), the outbox relay off, the member rate "
            "limit raised out of reach (three demo members send every view; the limiter still "
            "runs); `bare` is "
            "`bench/bare_app.py` under uvicorn with the same workers, one socket each as "
            "the gateway's (`bench/bare_server.py`): the same query shape "
            "answered with constants, the framework's ceiling on this machine (strawberry as it "
            "ships: each request parses and validates the query again); `bare+caches` is the "
            "same with strawberry's parser and validation caches, which the gateway has too: "
            "the framework's best",
            "- Client: `bench/load.py`, in the benchmark's process: prepared HTTP/1.1 POSTs "
            "on one keep-alive connection per client, the same for the gateway and bare",
        ]
    )


def report(results: Results, chart_name: str | None) -> str:
    setup = results.setup
    return "\n".join(
        [
            header(results),
            "",
            "The member view: `me` with profile, points, tier and its content, offers and their "
            "content, cart with pointsPreview, and orders, with the member tokens of the demo "
            "customers in turn. Each server gets a warm-up first (not measured), then "
            "sequential requests, then each concurrency. Server CPU is its whole process "
            "tree (from /proc); client CPU is the benchmark's own process; peak RSS is VmHWM "
            "summed over the server tree. Errors are requests with any outcome other than ok; "
            f"requests not started within a phase's time limit are listed as `{NOT_RUN}` "
            "below.",
            "",
            "## Load",
            "",
            load_table(results),
            "",
            *([f"![throughput and latency]({chart_name})", ""] if chart_name else []),
            "## Upstream calls per member view",
            "",
            "Counted by the fakes (`GET /__patron/requests`) before and after each phase, "
            "over the views sent in it (background cache refreshes included).",
            "",
            calls_table(results),
            "",
            "## Soak",
            "",
            soak_section(results.soak, setup.soak_seconds),
            "",
            "## Where the CPU goes",
            "",
            profile_section(results.profile),
            "",
            "## Targets (issue 5)",
            "",
            targets_section(results),
            "",
            f"Outcomes other than ok: {outcomes_line(results)}.",
            "",
        ]
    )


def phase_progress(p: Phase) -> str:
    errors = f", {p.load.errors} errors" if p.load.errors else ""
    return (
        f"  {p.server} {phase_name(p.workers, p.clients)}: {p.sent} requests, "
        f"{p.rps:,.0f} req/s, p50 {p.percentile(50):.1f} ms, p99 {p.percentile(99):.1f} ms, "
        f"server CPU {p.cpu_per_request:.2f} ms/req{errors}"
    )
