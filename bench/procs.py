"""The benchmarks' subprocesses: started in their own process group, always ended, and read
from /proc (CPU time and memory of a whole process tree: uvicorn's workers are children of
its parent, and a worker's numbers alone would hide the parent's)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found.extend(int(child) for child in text.split())
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def cpu_ms(pid: int) -> float:
    """utime + stime of `pid`'s tree, in milliseconds."""
    total = 0
    for proc in process_tree(pid):
        try:
            stat = Path(f"/proc/{proc}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total * 1000 / CLOCK_TICKS


def _status_kb(pid: int, field: str) -> int:
    """A `Vm*` line of /proc/<pid>/status, summed over `pid`'s tree, in kB."""
    total_kb = 0
    for proc in process_tree(pid):
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith(field):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb


def peak_rss_mb(pid: int) -> float:
    """The tree's high-water resident memory (VmHWM summed): each process's own peak."""
    return _status_kb(pid, "VmHWM:") / 1024


def rss_mb(pid: int) -> float:
    """The tree's resident memory now (VmRSS summed): what a soak samples for growth."""
    return _status_kb(pid, "VmRSS:") / 1024


@contextmanager
def spawn(
    name: str, argv: list[str], env: dict[str, str], logs: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in its own process group, run in `logs` (no `.env` file there, so the
    environment given is all its settings), its output in `logs/<name>.log`; the group is
    ended (TERM, then KILL) on the way out, whatever happened."""
    log = (logs / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        argv, env=env, cwd=logs, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)  # the group is this child's own (its pid)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        log.close()


def log_tail(logs: Path, name: str, chars: int = 2000) -> str:
    try:
        return (logs / f"{name}.log").read_text(errors="replace")[-chars:]
    except OSError:
        return ""


async def wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, logs: Path) -> None:
    """Until `url` answers at all (any status), or the process exits, or 30 s pass."""
    deadline = time.monotonic() + READY_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}:\n{log_tail(logs, name)}")
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise SystemExit(f"{name} did not answer at {url} within {READY_SECONDS:.0f} s")
