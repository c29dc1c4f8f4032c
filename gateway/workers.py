"""`patron serve --workers N`: uvicorn's supervisor, with one listening socket per worker.

uvicorn's own supervisor binds one socket and hands it to every worker, and every worker's
event loop accepts from it. Whichever loop is awake when connections arrive takes them all in
one go, so under a burst, or with a few long-lived keep-alive connections (a storefront's
backend, a load balancer), one worker serves nearly everything while the other idles: 40 of 40
requests and 16 of 16 connections on one worker were seen on a 2-core machine.

Here each worker slot has its own socket, bound to the same address with `SO_REUSEPORT`, and
Linux spreads new connections over the listening sockets by a hash of their addresses. The
supervisor binds and listens on every socket itself and keeps them open, so a connection that
arrives while a worker restarts waits in that slot's backlog for the replacement instead of
being refused. Everything else (health checks, restarts of dead workers, SIGHUP to restart all,
SIGTTIN/SIGTTOU to grow and shrink) is uvicorn's.

Only on Linux: elsewhere `SO_REUSEPORT` does not balance (or does not exist), and
`serve` falls back to uvicorn's shared socket (`balances_connections()`). `serve` is what
`patron serve` runs, and the benchmark's bare servers too, so that both are balanced alike.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.server import Server
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")


def balances_connections() -> bool:
    """Whether the kernel spreads connections over sockets sharing a port (Linux 3.9+)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def bind_worker_socket(config: Config) -> socket.socket:
    """A listening TCP socket on the configured address that other workers' sockets share."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((config.host, config.port))
        sock.listen(config.backlog)  # connections queue here even while its worker restarts
    except OSError as exc:
        sock.close()
        logger.error("Cannot listen on %s:%d: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    sock.set_inheritable(True)
    return sock


class ReusePortWorkers(Multiprocess):
    """uvicorn's `Multiprocess`, where worker slot i always serves socket i."""

    def __init__(self, config: Config) -> None:
        super().__init__(config, sockets=[])
        self.slot_sockets = [bind_worker_socket(config) for _ in range(config.workers)]
        logger.info(
            "Listening on %s:%d with %d sockets (SO_REUSEPORT, one per worker)",
            config.host, config.port, len(self.slot_sockets),
        )  # fmt: skip

    def spawn(self, slot: int) -> Process:
        process = Process(self.config, [self.slot_sockets[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self.spawn(slot) for slot in range(self.processes_num)]

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung or gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # would fail the same way again
                logger.error(f"Child process [{process.pid}] failed to start, stopping.")
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info(f"Child process [{process.pid}] died")
            self.processes[slot] = self.spawn(slot)

    def restart_all(self) -> None:
        """SIGHUP: each slot's replacement is serving before the old worker is stopped."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self.spawn(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error(f"Child process [{new.pid}] was not ready; restart aborted.")
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, adding a worker and its socket.")
        self.slot_sockets.append(bind_worker_socket(self.config))
        self.processes_num += 1
        self.processes.append(self.spawn(len(self.processes)))

    def handle_ttou(self) -> None:
        if self.processes_num <= 1:
            logger.info("Already at one worker.")
            return
        logger.info("Received SIGTTOU, removing a worker and its socket.")
        self.processes_num -= 1
        process = self.processes.pop()
        # The worker holds the last copy of the slot's socket once this one is closed, so the
        # socket leaves the port as soon as the worker stops listening, and no connection is
        # sent to it after that (those queued at that moment are reset: README).
        self.slot_sockets.pop().close()
        process.terminate()
        process.join()

    def run(self) -> None:
        try:
            super().run()
        finally:
            for sock in self.slot_sockets:
                sock.close()


def serve(config: Config) -> int:
    """Serve `config.app` with `config.workers` workers: in this process for one, under
    `ReusePortWorkers` for several (uvicorn's own supervisor where the kernel cannot balance).
    Returns the process's exit code."""
    if config.workers > 1:
        if balances_connections():
            ReusePortWorkers(config).run()
        else:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE
