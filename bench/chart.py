"""The member view benchmark's chart: throughput and latency per configuration, with the
targets drawn, from the same `Results` as the markdown report.

matplotlib is in the optional `bench` dependencies (`pip install -e '.[bench]'`, which
`make bench` does): without it the report is written and the chart skipped, said so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.measurements import BARE_CACHED, Phase, Results

GATEWAY_COLOUR = "#1f4e79"
BARE_COLOUR = "#b0b7c3"
P50_COLOUR = "#2e86c1"
P99_COLOUR = "#c0392b"


def _label(workers: int, clients: int) -> str:
    return f"{workers}w\n{'seq' if clients == 1 else f'{clients} cl'}"


def _throughput(ax: Any, results: Results) -> None:
    gateway = results.gateway
    xs = list(range(len(gateway)))
    width = 0.27
    bars = ax.bar([x - width for x in xs], [p.rps for p in gateway], width,
                  color=GATEWAY_COLOUR, label="gateway")  # fmt: skip
    ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
    bare = [results.bare(p.workers, p.clients) for p in gateway]
    bars = ax.bar(xs, [b.rps if b else 0 for b in bare], width,
                  color=BARE_COLOUR, label="bare strawberry (ceiling)")  # fmt: skip
    ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
    cached = [results.bare(p.workers, p.clients, BARE_CACHED) for p in gateway]
    bars = ax.bar([x + width for x in xs], [b.rps if b else 0 for b in cached], width,
                  color=BARE_COLOUR, alpha=0.5, label="bare + strawberry's caches")  # fmt: skip
    ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
    labelled = False
    for x, ceiling, p in zip(xs, bare, gateway, strict=True):
        if ceiling and p.clients > 1:
            ax.hlines(0.5 * ceiling.rps, x - 1.5 * width, x - 0.5 * width, colors="black",
                      linestyles="--", label=None if labelled else "target: ½ of bare")  # fmt: skip
            labelled = True
    labels = [_label(p.workers, p.clients) for p in gateway]
    if results.soak is not None:
        xs.append(len(xs))
        bars = ax.bar([xs[-1] - width], [results.soak.rps], width, color=GATEWAY_COLOUR)
        ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
        labels.append(f"soak\n{results.soak.workers}w {results.soak.clients} cl")
    ax.set_xticks(xs, labels)
    ax.set_ylabel("member views per second")
    ax.set_title("Throughput")
    ax.legend(fontsize="small")


def _latency(ax: Any, results: Results) -> None:
    gateway: list[Phase] = results.gateway
    xs = list(range(len(gateway)))
    width = 0.38
    p50 = [p.percentile(50) for p in gateway]
    p99 = [p.percentile(99) for p in gateway]
    labels = [_label(p.workers, p.clients) for p in gateway]
    if results.soak is not None:
        xs.append(len(xs))
        p50.append(results.soak.percentile(50))
        p99.append(results.soak.percentile(99))
        labels.append(f"soak\n{results.soak.workers}w {results.soak.clients} cl")
    for offset, values, colour, name in ((-1, p50, P50_COLOUR, "p50"), (1, p99, P99_COLOUR, "p99")):
        bars = ax.bar([x + offset * width / 2 for x in xs], values, width, color=colour,
                      label=name)  # fmt: skip
        ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
    upstream = results.setup.upstream_ms
    ax.axhline(upstream + 10, color=P50_COLOUR, linestyle="--",
               label=f"p50 target, sequential: {upstream + 10:g} ms")  # fmt: skip
    ax.axhline(3 * upstream, color=P99_COLOUR, linestyle="--",
               label=f"p99 target, 16 clients: {3 * upstream:g} ms")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xticks(xs, labels)
    ax.set_ylabel("gateway latency, ms (log scale)")
    ax.set_title("Latency")
    ax.legend(fontsize="small")


def write_chart(results: Results, path: Path) -> bool:
    """Write the PNG; False (and nothing written) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    _throughput(left, results)
    _latency(right, results)
    setup = results.setup
    latencies = ", ".join(f"{k} {v:g} ms" for k, v in setup.latencies_ms.items())
    figure.suptitle(
        f"Member view, {setup.started:%Y-%m-%d %H:%M} UTC: {setup.database.split(' (')[0]}, "
        f"upstreams {latencies}"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
