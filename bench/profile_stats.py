"""cProfile's numbers, made fit to say where CPU goes: every thread, and its own cost out.

- `ThreadProfilers`: a profile in each thread started while installed. aiosqlite runs each
  SQLite connection in a thread of its own: a profile of the event loop's thread alone
  would miss the database's work.
- The clock is `time.thread_time`: CPU time, so a view waiting on an upstream costs
  nothing, and a thread waiting for the GIL is not charged for the thread that holds it.
- `calibrate`, `fitted` and `without_overhead`: cProfile costs more per call than the
  call of a small function itself (two reads of the clock and its bookkeeping, some of it
  recorded as the callee's own time, some as the caller's). A member view makes tens of
  thousands of calls, so raw own times overstate the packages of many tiny calls. How the
  cost splits between callee and caller, for a Python and for a C function, is measured
  in a tight loop (`calibrate`); its size in real code is larger (the profiler's tables
  miss the caches), so it is scaled to what the run itself shows: the CPU recorded under
  the profiler less the CPU of the same views without it, over the calls (`fitted`).
  Then each function's own time loses that cost per call it received and per call it
  made (`without_overhead`).
"""

from __future__ import annotations

import cProfile
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

Label = tuple[str, int, str]  # cProfile's (file, first line, function name); file "~": C
CallerEntry = tuple[int, float]  # calls from that caller, own seconds in those calls
# One function's numbers: calls, own seconds, and the same by caller.
Entry = tuple[int, float, dict[Label, CallerEntry]]
Stats = dict[Label, Entry]

CALIBRATION_CALLS = 100_000
CALIBRATION_REPEATS = 5


def is_builtin(func: Label) -> bool:
    return func[0] == "~"


def entries(profile: cProfile.Profile) -> Stats:
    """Calls, own time and the same by caller of each function `profile` has seen."""
    profile.snapshot_stats()
    return {
        func: (
            int(nc),
            float(tt),
            {caller: (int(sub[0]), float(sub[2])) for caller, sub in callers.items()},
        )
        for func, (_cc, nc, tt, _ct, callers) in profile.stats.items()
    }


def merge(into: Stats, other: Stats, sign: int = 1) -> None:
    """Add (sign 1) or take away (sign -1) `other`'s numbers, function by function."""
    for func, (calls, own, callers) in other.items():
        had_calls, had_own, had_callers = into.get(func, (0, 0.0, {}))
        merged = dict(had_callers)
        for caller, (n, seconds) in callers.items():
            old_n, old_seconds = merged.get(caller, (0, 0.0))
            merged[caller] = (old_n + sign * n, old_seconds + sign * seconds)
        into[func] = (had_calls + sign * calls, had_own + sign * own, merged)


class ThreadProfilers:
    """A cProfile on thread CPU time in each thread started while installed. Threads
    already running are not reached: install it before the threads of interest start."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        threading.setprofile(self._start)

    def uninstall(self) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]  # None unhooks, as documented

    def _start(self, frame: FrameType, event: str, arg: object) -> None:
        # Called on the new thread's first event: replace this hook by a real profiler.
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)
        with self._lock:
            self.profiles.append(profile)
        profile.enable()

    def snapshot(self) -> list[Stats]:
        with self._lock:
            profiles = list(self.profiles)
        return [entries(p) for p in profiles]


def thread_delta(before: list[Stats], after: list[Stats]) -> Stats:
    """What the threads did between two snapshots (a thread born in between had nothing
    before; one that ended keeps its numbers)."""
    total: Stats = {}
    for i, stats in enumerate(after):
        merge(total, stats)
        if i < len(before):
            merge(total, before[i], sign=-1)
    return total


# --- the profiler's own cost --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Overhead:
    """Seconds cProfile adds per call: recorded as the callee's own time, and as the
    caller's, for a Python function and for a C function."""

    python_callee: float = 0.0
    python_caller: float = 0.0
    c_callee: float = 0.0
    c_caller: float = 0.0

    def scaled(self, factor: float) -> Overhead:
        return Overhead(
            self.python_callee * factor,
            self.python_caller * factor,
            self.c_callee * factor,
            self.c_caller * factor,
        )

    def callee(self, func: Label) -> float:
        return self.c_callee if is_builtin(func) else self.python_callee

    def caller(self, func: Label) -> float:
        return self.c_caller if is_builtin(func) else self.python_caller


def _empty() -> None:
    pass


def _python_calls(n: int) -> None:
    for _ in range(n):
        _empty()


def _c_calls(n: int, box: tuple[int] = (1,)) -> None:
    for _ in range(n):
        len(box)


def _measure(loop: Callable[[int], None], callee: str) -> tuple[float, float]:
    """(callee, caller) overhead per call of `loop`'s inner call, the function named
    `callee` (as cProfile names it)."""
    n = CALIBRATION_CALLS
    began = time.thread_time()
    loop(n)
    plain = (time.thread_time() - began) / n
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    loop(n)
    profile.disable()
    stats = entries(profile)
    code = loop.__code__
    outer = stats[(code.co_filename, code.co_firstlineno, code.co_name)][1] / n
    inner = next(own for func, (_c, own, _by) in stats.items() if func[2] == callee) / n
    # The callee's recorded time is nearly all overhead (its body takes a few ns); the rest
    # of the profiled loop's cost beyond the plain loop's (outer + inner - plain - inner)
    # is recorded in the caller.
    return max(0.0, inner), max(0.0, outer - plain)


def calibrate() -> Overhead:
    """The profiler's cost per call on this machine now (the median of a few runs)."""
    python = [_measure(_python_calls, "_empty") for _ in range(CALIBRATION_REPEATS)]
    c = [_measure(_c_calls, "<built-in method builtins.len>") for _ in range(CALIBRATION_REPEATS)]
    return Overhead(
        python_callee=statistics.median(p[0] for p in python),
        python_caller=statistics.median(p[1] for p in python),
        c_callee=statistics.median(x[0] for x in c),
        c_caller=statistics.median(x[1] for x in c),
    )


def total_own(stats: Stats) -> float:
    return sum(own for _calls, own, _callers in stats.values())


def total_calls(stats: Stats) -> int:
    return sum(calls for calls, _own, _callers in stats.values())


def predicted_cost(stats: Stats, overhead: Overhead) -> float:
    """What `overhead` adds to `stats`: its callee part per call received, its caller part
    per call made from a function the profile saw (a call from C code, such as the event
    loop resuming a coroutine under uvloop, has no recorded caller)."""
    cost = 0.0
    for func, (calls, _own, callers) in stats.items():
        cost += calls * overhead.callee(func)
        cost += sum(n for n, _s in callers.values()) * overhead.caller(func)
    return cost


def fitted(calibrated: Overhead, stats: Stats, measured_seconds: float) -> Overhead:
    """`calibrated` scaled so that the cost it predicts for `stats`'s calls is what the
    profiler added: recorded own time less `measured_seconds` (the same work measured
    without the profiler). Never negative: a run cheaper under the profiler is left as
    recorded."""
    predicted = predicted_cost(stats, calibrated)
    excess = total_own(stats) - measured_seconds
    if predicted <= 0 or excess <= 0:
        return calibrated.scaled(0.0)
    return calibrated.scaled(excess / predicted)


def without_overhead(stats: Stats, overhead: Overhead) -> Stats:
    """Each function's own time less the profiler's cost for the calls it received and
    the calls it made (never below zero)."""
    own: dict[Label, float] = {}
    callers_out: dict[Label, dict[Label, CallerEntry]] = {}
    for func, (calls, seconds, callers) in stats.items():
        cost = overhead.callee(func)
        own[func] = seconds - calls * cost
        callers_out[func] = {c: (n, max(0.0, s - n * cost)) for c, (n, s) in callers.items()}
    for func, (_calls, _seconds, callers) in stats.items():
        for caller, (n, _s) in callers.items():
            if caller in own:
                own[caller] -= n * overhead.caller(func)
    return {
        func: (calls, max(0.0, own[func]), callers_out[func])
        for func, (calls, _seconds, _callers) in stats.items()
    }
