"""Where and from what a benchmark ran, for its report's header: the machine (and how
busy it was at the start), the event loop, the commit."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def describe_machine() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    try:
        meminfo = Path("/proc/meminfo").read_text().split()
        memory = f", {int(meminfo[meminfo.index('MemTotal:') + 1]) / 1024**2:.1f} GB RAM"
    except (OSError, ValueError):
        memory = ""
    one, five, fifteen = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs ({model}){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, client on {event_loop_name()}; load average "
        f"at start {one:.2f} / {five:.2f} / {fifteen:.2f} (other work on the host shows "
        "here); the fakes, the servers and the client share the host"
    )


def event_loop_name() -> str:
    loop = type(asyncio.get_running_loop())
    return "uvloop" if loop.__module__.startswith("uvloop") else "asyncio"


def git_commit() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True,
                              text=True, timeout=10, check=True)  # fmt: skip
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}{' with uncommitted changes' if dirty else ''}"
