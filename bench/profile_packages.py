"""Own CPU time by package: which library a member view's CPU goes to.

A function's own time goes to the package its file belongs to (site-packages, this
checkout's packages, the standard library). A C function (a built-in, such as
`sqlite3.Cursor.execute` or `isinstance`) has no file: its own time goes to the packages of
its callers, in the proportion cProfile recorded per caller.
"""

from __future__ import annotations

import re
import sysconfig
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.profile_stats import Label, Stats, is_builtin

ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"])
TOP_FUNCTIONS = 15

DRIVER = "DB driver (aiosqlite/sqlite3, asyncpg)"
HTTP = "httpx/httpcore/h11"
LOOP = "asyncio, event loop, threads"
BENCH = "benchmark (in-process driver)"
OTHER = "other"
PACKAGES: dict[str, str] = {
    "graphql": "graphql-core",
    "strawberry": "strawberry",
    "sqlalchemy": "SQLAlchemy",
    "aiosqlite": DRIVER,
    "sqlite3": DRIVER,
    "_sqlite3": DRIVER,
    "asyncpg": DRIVER,
    "httpx": HTTP,
    "httpcore": HTTP,
    "h11": HTTP,
    "h2": HTTP,
    "starlette": "starlette",
    "asyncio": LOOP,
    "_asyncio": LOOP,
    "uvloop": LOOP,
    "selectors": LOOP,
    "select": LOOP,
    "socket": LOOP,
    "_socket": LOOP,
    "anyio": LOOP,
    "sniffio": LOOP,
    "threading": LOOP,
    "_thread": LOOP,
    "queue": LOOP,
    "_queue": LOOP,
    "concurrent": LOOP,
    "jwt": "pyjwt",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "pydantic_settings": "pydantic",
    "gateway": "gateway (Patron)",
    "resolvers": "resolvers (Patron)",
    "loyalty": "loyalty (Patron)",
    "adapters": "adapters (Patron)",
    "bench": BENCH,
}
ROWS = list(dict.fromkeys([*PACKAGES.values(), OTHER]))  # the report's order

_BUILTIN = re.compile(r"<built-in method ([\w.]+)>")
_METHOD = re.compile(r"<method '\w+' of '([\w.]+)' objects>")


def _site_index(parts: tuple[str, ...]) -> int | None:
    """The index of the last "site-packages" in a path's parts, if any."""
    if "site-packages" not in parts:
        return None
    return len(parts) - 1 - parts[::-1].index("site-packages")


def module_root(filename: str) -> str:
    """The top-level module a code object's file belongs to ("?" when it has none)."""
    if filename.startswith("<frozen "):
        return filename.removeprefix("<frozen ").rstrip(">").split(".")[0]
    if filename.startswith("<"):
        return "?"  # generated code: <string> (dataclass and namedtuple methods), ...
    path = Path(filename)
    site = _site_index(path.parts)
    if site is not None:
        return path.parts[site + 1].split(".")[0] if site + 1 < len(path.parts) else "?"
    for base in (ROOT, STDLIB):
        if path.is_relative_to(base):
            return path.relative_to(base).parts[0].split(".")[0]
    return "?"


def builtin_root(name: str) -> str:
    """The module of a C function from cProfile's name for it ("builtins" when none)."""
    match = _BUILTIN.fullmatch(name) or _METHOD.fullmatch(name)
    if match is None or "." not in match.group(1):
        return "builtins"
    return match.group(1).split(".")[0]


def package_of(root: str) -> str:
    return PACKAGES.get(root, OTHER)


def by_module(stats: Stats) -> tuple[dict[str, float], dict[str, int]]:
    """Own seconds and calls per top-level module; a C function's go to its callers'."""
    seconds: defaultdict[str, float] = defaultdict(float)
    calls: defaultdict[str, int] = defaultdict(int)
    for func, (n, own, callers) in stats.items():
        if not is_builtin(func):
            root = module_root(func[0])
            seconds[root] += own
            calls[root] += n
            continue
        given, counted = 0.0, 0
        for caller, (caller_calls, caller_seconds) in callers.items():
            if not is_builtin(caller):
                root = module_root(caller[0])
                seconds[root] += caller_seconds
                calls[root] += caller_calls
                given += caller_seconds
                counted += caller_calls
        if own - given > 0 or n - counted > 0:
            root = builtin_root(func[2])
            seconds[root] += max(0.0, own - given)
            calls[root] += max(0, n - counted)
    return dict(seconds), dict(calls)


@dataclass(frozen=True, slots=True)
class PackageShare:
    package: str
    ms_per_view: float  # the profiler's cost taken out
    share: float
    raw_share: float  # of the own time as recorded
    calls_per_view: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class HotFunction:
    function: str
    package: str
    ms_per_view: float  # the profiler's cost taken out
    raw_ms_per_view: float
    share: float
    calls_per_view: float


def _by_package(stats: Stats) -> tuple[dict[str, float], dict[str, int], dict[str, float]]:
    """Own seconds and calls by package, and own seconds by module."""
    seconds, calls = by_module(stats)
    package_seconds: defaultdict[str, float] = defaultdict(float)
    package_calls: defaultdict[str, int] = defaultdict(int)
    for root, own in seconds.items():
        package_seconds[package_of(root)] += own
        package_calls[package_of(root)] += calls.get(root, 0)
    return package_seconds, package_calls, seconds


def package_shares(stats: Stats, views: int, raw: Stats) -> list[PackageShare]:
    """Each package's own time per view in `stats`, its share, and its share of `raw` (the
    same profile as recorded)."""
    package_seconds, package_calls, seconds = _by_package(stats)
    raw_seconds = _by_package(raw)[0]
    total = sum(package_seconds.values()) or 1.0
    raw_total = sum(raw_seconds.values()) or 1.0
    others = sorted(
        ((own, root) for root, own in seconds.items() if package_of(root) == OTHER),
        reverse=True,
    )
    note = ", ".join(f"{root} {own / total:.0%}" for own, root in others[:4] if own > 0)
    return [
        PackageShare(
            package=row,
            ms_per_view=package_seconds.get(row, 0.0) * 1000 / views,
            share=package_seconds.get(row, 0.0) / total,
            raw_share=raw_seconds.get(row, 0.0) / raw_total,
            calls_per_view=package_calls.get(row, 0) / views,
            note=note if row == OTHER else "",
        )
        for row in ROWS
    ]


def describe(func: Label) -> str:
    """A function as the report shows it: a path below site-packages, this checkout or the
    standard library, its first line and its name (a C function: cProfile's name)."""
    file, line, name = func
    if is_builtin(func):
        return name
    path = Path(file)
    site = _site_index(path.parts)
    shown = "/".join(path.parts[site + 1 :]) if site is not None else file
    if site is None:
        for base in (ROOT, STDLIB):
            if path.is_relative_to(base):
                shown = str(path.relative_to(base))
                break
    return f"{shown}:{line} {name}"


def _package_of_function(func: Label, stats: Stats) -> str:
    if not is_builtin(func):
        return package_of(module_root(func[0]))
    callers = stats[func][2]
    python_callers = [(s, c) for c, (_n, s) in callers.items() if not is_builtin(c)]
    if not python_callers:
        return package_of(builtin_root(func[2]))
    return package_of(module_root(max(python_callers)[1][0])) + " (its main caller)"


def hot_functions(stats: Stats, views: int, raw: Stats) -> list[HotFunction]:
    """The functions of most own time in `stats`; `raw` is the same profile as recorded."""
    total = sum(own for _calls, own, _callers in stats.values()) or 1.0
    ranked = sorted(stats.items(), key=lambda item: item[1][1], reverse=True)
    return [
        HotFunction(
            function=describe(func),
            package=_package_of_function(func, raw),
            ms_per_view=own * 1000 / views,
            raw_ms_per_view=raw[func][1] * 1000 / views,
            share=own / total,
            calls_per_view=calls / views,
        )
        for func, (calls, own, _callers) in ranked[:TOP_FUNCTIONS]
    ]
