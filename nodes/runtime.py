"""What every node process does around its role: arguments, logging, signals, exit codes.

`python -m nodes.<role> --config FILE` loads the config, installs uvloop when present,
runs the role's coroutine until it returns or SIGTERM/SIGINT arrives, and exits 0 on a
clean stop. Expected failures (a port in use, a bad config) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from nodes import config as cfg
from nodes import rpc
from nodes.metrics import write_atomic


class NodeError(Exception):
    """An expected failure of a node; its message is the one line the user sees."""


class Stop:
    """Set by SIGTERM/SIGINT: the role finishes its measurement, flushes and returns."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


async def every(stop: Stop, interval_s: float) -> AsyncIterator[float]:
    """Until a stop is requested, every `interval_s` (and once more at the stop): the seconds
    since the previous turn, for a server's stats line."""
    last = time.monotonic()
    while not stop.requested:
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass
        now = time.monotonic()
        yield max(now - last, 1e-9)
        last = now


def ready_path(conf: cfg.Common) -> Path:
    return Path(conf.outdir) / f"{conf.name}.ready"


def mark_ready(conf: cfg.Common, detail: str = "") -> None:
    """Tell the orchestrator this process serves; written atomically."""
    write_atomic(ready_path(conf), f"{detail}\n".encode())


async def listen(conf: cfg.Common, handler: rpc.Handler) -> asyncio.Server:
    if conf.listen is None:
        raise NodeError("the config names no listen address")
    try:
        server = await rpc.serve(conf.listen.host, conf.listen.port, handler, name=conf.name)
        logging.getLogger("mason").info("listening on %s:%d", conf.listen.host, conf.listen.port)
        return server
    except OSError as exc:
        where = f"{conf.listen.host}:{conf.listen.port}"
        if exc.errno == errno.EADDRINUSE:
            raise NodeError(f"cannot listen on {where}: port already in use") from None
        raise NodeError(f"cannot listen on {where}: {exc.strerror}") from None


def main(
    kind: type[cfg.ConfigT],
    role: Callable[[cfg.ConfigT, Stop], Awaitable[None]],
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m nodes.{kind.__name__}")
    parser.add_argument("--config", required=True, help="the role's TOML config")
    args = parser.parse_args(argv)
    try:
        conf = cfg.load(args.config, kind)
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    Path(conf.outdir).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s.%(msecs)03d {conf.name} %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    loop_name = rpc.install_uvloop()
    logging.getLogger("mason").info("starting (%s)", loop_name)

    async def runner() -> None:
        stop = Stop()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.event.set)
        await role(conf, stop)

    # MASON_PROFILE=DIR: profile this process and write DIR/<name>.prof at a clean stop
    # (read with `python -m pstats`), for finding where a role spends its CPU.
    profile_dir = os.environ.get("MASON_PROFILE")
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        asyncio.run(runner())
    except NodeError as exc:
        print(f"error: {conf.name}: {exc}", flush=True)
        sys.exit(2)
    if profiler is not None and profile_dir:
        profiler.disable()
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(Path(profile_dir) / f"{conf.name}.prof"))
    logging.getLogger("mason").info("stopped")
    logging.shutdown()
