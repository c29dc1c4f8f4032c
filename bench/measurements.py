"""What the member view benchmark measured: one `Phase` per server, worker count and client
count, a `Soak`, a CPU profile, and how it was all set up (`Setup`); the markdown report
and the chart are both made from one `Results`."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from bench.cpu_profile import CpuProfile
from bench.load import LoadResult
from bench.upstream_calls import UpstreamCalls

SAMPLE_SECONDS = 10.0  # the soak's RSS sampling interval
BASELINE_SECONDS = 60.0  # a soak's growth is measured from its first sample after a minute


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# The two framework ceilings of bench/bare_app.py.
BARE = "bare"  # strawberry as it ships: the ceiling
BARE_CACHED = "bare+caches"  # with strawberry's parser and validation caches, as the gateway


@dataclass
class Phase:
    server: str  # "gateway" | BARE | BARE_CACHED
    workers: int
    clients: int  # 1: sequential
    planned: int  # requests asked for; the load result says how many were sent
    load: LoadResult
    cpu_ms: float  # the server's process tree, during the phase
    client_cpu_ms: float  # this process (the load generator), during the phase
    peak_rss_mb: float  # the server's process tree, VmHWM summed, after the phase
    calls: UpstreamCalls | None = None  # the fakes' counts during the phase (gateway only)

    @property
    def label(self) -> str:
        return f"{self.workers}w {'seq' if self.clients == 1 else f'c{self.clients}'}"

    @property
    def sent(self) -> int:
        return self.load.sent

    @property
    def rps(self) -> float:
        return self.sent / self.load.seconds if self.load.seconds else 0.0

    def percentile(self, q: int) -> float:
        return percentile(self.load.latencies_ms, q)

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_ms / max(1, self.sent)

    @property
    def client_cpu_per_request(self) -> float:
        return self.client_cpu_ms / max(1, self.sent)

    @property
    def outcomes(self) -> Counter[str]:
        return self.load.outcomes


@dataclass(frozen=True, slots=True)
class RssSample:
    seconds: float  # since the soak began
    rss_mb: float


@dataclass
class Soak:
    workers: int
    clients: int
    planned_seconds: float
    load: LoadResult
    cpu_ms: float
    client_cpu_ms: float
    samples: list[RssSample] = field(default_factory=list)
    calls: UpstreamCalls | None = None

    @property
    def rps(self) -> float:
        return self.load.sent / self.load.seconds if self.load.seconds else 0.0

    def percentile(self, q: int) -> float:
        return percentile(self.load.latencies_ms, q)

    @property
    def baseline(self) -> RssSample | None:
        """The first sample after the first minute (after a fifth of a soak shorter than
        five minutes): warm-up growth (caches, pools, allocator arenas) is not a leak."""
        after = min(BASELINE_SECONDS, self.planned_seconds / 5)
        return next((s for s in self.samples if s.seconds >= after), None)

    @property
    def end(self) -> RssSample | None:
        return self.samples[-1] if self.samples else None

    @property
    def peak_mb(self) -> float:
        return max((s.rss_mb for s in self.samples), default=0.0)

    @property
    def growth(self) -> float | None:
        """(end - baseline) / baseline; None when there is no sample after the baseline."""
        base, end = self.baseline, self.end
        if base is None or end is None or end.seconds <= base.seconds or base.rss_mb <= 0:
            return None
        return (end.rss_mb - base.rss_mb) / base.rss_mb


@dataclass(frozen=True)
class Setup:
    """How the run was made, for the report's header: enough to run it again."""

    command: str  # as typed
    effective: str  # every option spelled out
    started: datetime
    commit: str
    machine: str
    database: str
    latencies_ms: dict[str, float]  # per upstream
    soak_seconds: float
    soak_clients: int

    @property
    def upstream_ms(self) -> float:
        """The latency the targets are relative to: upstream calls run in parallel, so a
        member view waits for the slowest upstream, not for their sum."""
        return max(self.latencies_ms.values())


@dataclass
class Results:
    setup: Setup
    phases: list[Phase]
    soak: Soak | None
    profile: CpuProfile | None

    def bare(self, workers: int, clients: int, server: str = BARE) -> Phase | None:
        """The ceiling's phase of the same shape: strawberry as it ships (the issue's
        ceiling), or with `server=BARE_CACHED` with its parser and validation caches."""
        return next(
            (
                p
                for p in self.phases
                if p.server == server and p.workers == workers and p.clients == clients
            ),
            None,
        )

    @property
    def gateway(self) -> list[Phase]:
        return [p for p in self.phases if p.server == "gateway"]
