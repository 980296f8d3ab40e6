"""masonctl: the command line. Thin: it parses flags and calls the modules that do the work.

Every command turns expected failures (bad input, dead host, port in use) into one line on
stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run Mason experiments locally or on Emulab/CloudLab, and analyse their results.",
)
err = Console(stderr=True, highlight=False)
# The parser's usage error class, reached through typer's public BadParameter (typer may
# bring click itself or a copy of it).
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error line and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


# ---- commands: experiment (run, check) --------------------------------------------------

out = Console(highlight=False)


def _opt(name: str, help: str, *, hidden_default: Any = None) -> Any:
    """An option spelled both --a_b (the original's flags) and --a-b."""
    dashed = "--" + name.replace("_", "-")
    underscored = "--" + name
    names = [dashed] if dashed == underscored else [dashed, underscored]
    return typer.Option(hidden_default, *names, help=help, show_default=False)


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def run(
    nproxies: Optional[int] = _opt("nproxies", "Proxy machines (a multiple of 3). [3]"),
    nproxy_threads: Optional[int] = _opt(
        "nproxy_threads", "Proxy processes per proxy machine = groups per triple. "
        "[local 1, testbed 8]"),
    nproxy_leaders: Optional[int] = _opt(
        "nproxy_leaders", "Total groups; derived when left out, checked when given."),
    nclients: Optional[int] = _opt("nclients", "Client machines. [1]"),
    nclient_threads: Optional[int] = _opt(
        "nclient_threads", "Client processes per client machine. [local 2, testbed 16]"),
    client_concurrency: Optional[int] = _opt(
        "client_concurrency", "Outstanding operations per client process. [32]"),
    nsequence_spaces: Optional[int] = _opt("nsequence_spaces", "Sequence spaces. [1]"),
    expduration: Optional[float] = _opt(
        "expduration", "Measured seconds, after the warm-up. [local 10, testbed 60]"),
    warmup: Optional[float] = _opt("warmup", "Warm-up seconds. [local 2, testbed 4]"),
    cooldown: Optional[float] = _opt("cooldown", "Cool-down seconds. [local 1, testbed 4]"),
    batch_timeout: Optional[int] = _opt(
        "batch_timeout", "Proxy batch timeout in microseconds. [local 200, testbed 20]"),
    batch_max_ops: Optional[int] = _opt("batch_max_ops", "Operations that close a batch. [1024]"),
    max_log_size: Optional[int] = _opt("max_log_size", "Raft entries before compaction."),
    election_timeout_ms: Optional[int] = _opt(
        "election_timeout_ms", "Raft election timeout. [local 300, testbed 1000]"),
    client_timeout_ms: Optional[int] = _opt(
        "client_timeout_ms", "Client retransmit timeout. [local 500, testbed 1000]"),
    kill_leader: Optional[float] = _opt(
        "kill_leader", "Kill -9 group 0's leader this many seconds after warm-up."),
    kill_sequencer: Optional[float] = _opt(
        "kill_sequencer", "Kill -9 the sequencer this many seconds after warm-up."),
    nsequencers: Optional[int] = _opt("nsequencers", "Sequencers (2 = with a backup)."),
    base_port: Optional[int] = _opt("base_port", "First TCP port on each machine. [31850]"),
    record_seqnums: Optional[bool] = typer.Option(
        None, "--record-seqnums/--no-record-seqnums", "--record_seqnums",
        help="Clients record every number (needed for the contiguity check). [local on]",
        show_default=False),
    record_noops: Optional[bool] = typer.Option(
        None, "--record-noops/--no-record-noops", "--record_noops",
        help="Proxies record committed noops. [on with --record-seqnums]", show_default=False),
    system: str = typer.Option("mason", "--system", help="mason (alias master)."),
    outdir: Optional[str] = _opt("outdir", "Results directory name. [results-<unix time>]"),
    results_root: Path = typer.Option(Path("results"), "--results", help="Where runs go."),
    python: Optional[str] = typer.Option(
        None, "--python", help="Interpreter that runs the nodes. [this one]"),
) -> None:
    """Run one experiment; with no machine list, every role runs on this machine."""
    from orchestrator import spec as specs
    from orchestrator.runner import run_local

    flags = dict(locals())
    given = {k: v for k, v in flags.items()
             if v is not None and k in specs.ExperimentSpec.__struct_fields__
             and k not in ("name", "system")}
    name = outdir or f"results-{int(time.time())}"
    if "/" in name or name in ("", ".", ".."):
        raise fail(f"--outdir must be a plain directory name, not {name!r}")
    record = given.get("record_seqnums", True)
    given["record_seqnums"] = record
    given.setdefault("record_noops", record)
    try:
        spec = specs.validate(specs.ExperimentSpec(
            name=name, system=system, **{**specs.LOCAL_DEFAULTS, **given}))
    except specs.SpecError as exc:
        raise fail(str(exc)) from None
    code = run_local(spec, results_root / name, out, err)
    raise typer.Exit(code)


@app.command()
def check(
    results: Path = typer.Argument(..., help="A run's results directory."),
) -> None:
    """Prove contiguity (every number 0..max once) and per-client FIFO for a finished run."""
    from analysis.contiguity import check_run

    if not results.is_dir():
        raise fail(f"{results}: no such results directory")
    verdict = check_run(results)
    for line in verdict.lines():
        out.print(line)
    raise typer.Exit(0 if verdict.ok else 1)


# ---- commands: testbed, setup, profile ----------------------------------------------------

# ---- commands: analysis (parse, plot) and suites ------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors become one line, not a usage screen and a traceback."""
    try:
        code = app(args=argv, standalone_mode=False)
    except UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            out.print(ctx.get_help())
            sys.exit(0)
        hint = f" (see masonctl {ctx.command_path.split()[-1]} --help)" if ctx else ""
        err.print(f"[bold red]error:[/] {exc.format_message()}{hint}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
