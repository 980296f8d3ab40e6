"""Figures: throughput over time across failures (recovery), and throughput against latency.

Every figure is written as PDF (for papers) and PNG (for a quick look). Figures are built on
the Agg canvas directly rather than through pyplot: no display is needed, no global backend
is switched under the caller (a notebook keeps its own), and nothing stays registered after.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter

from analysis.datfiles import FaultEvent, FaultInterval, fault_intervals, read_faults, read_series
from analysis.recovery import Frontier, run_frontiers
from analysis.runfiles import run_files

__all__ = [
    "EVENT_STYLES",
    "plot_recovery",
    "recovery_figure",
    "plot_scaling",
    "plot_throughput_latency",
    "total_series",
]

StrPath = str | os.PathLike[str]

# Colour per fault kind; kills in warm colours, the network in cool ones.
EVENT_STYLES: dict[str, str] = {
    "kill_leader": "tab:red",
    "kill_sequencer": "tab:purple",
    "kill_follower": "tab:orange",
    "kill_backup": "tab:pink",
    "kill_leader_mid_batch": "tab:olive",
    "kill_leader_machine": "tab:red",
    "kill_all_leaders": "darkred",
    "restart": "tab:blue",
    "pause_leader": "tab:cyan",
    "pause_follower": "tab:gray",
    "pause_sequencer": "tab:purple",
    "partition_leader": "tab:brown",
    "partition_oneway": "tab:olive",
    "partition_sequencer": "tab:green",
    "latency_leader": "tab:pink",
}
# A process coming back is drawn dotted: it ends an outage rather than starting one.
EVENT_LINESTYLES: dict[str, str] = {"restart": ":"}
_MARKERS = ("measure_start", "measure_end")
_DPI = 150


def total_series(run_dir: StrPath, bin_ms: int = 10) -> pd.DataFrame:
    """Completions summed over every ``*.series`` of a run, re-binned to ``bin_ms``.

    Columns ``unix_ms`` (bin start, every bin from the first to the last) and ``ops``.
    ``bin_ms`` must be a multiple of the recorded bin width: bins cannot be split.
    """
    if bin_ms <= 0:
        raise ValueError(f"bin_ms must be positive, got {bin_ms}")
    frames = [read_series(p) for p in run_files(run_dir, "*.series")]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({"unix_ms": np.zeros(0, np.int64), "ops": np.zeros(0, np.int64)})
    for f in frames:
        if len(f) > 1:
            width = int(np.diff(f["unix_ms"].to_numpy()).min())
            if bin_ms % width:
                raise ValueError(f"bin_ms {bin_ms} is not a multiple of the recorded {width} ms")
    allrows = pd.concat(frames, ignore_index=True)
    start = (allrows["unix_ms"].to_numpy() // bin_ms) * bin_ms
    sums = pd.Series(allrows["ops"].to_numpy()).groupby(start).sum()
    full = np.arange(int(sums.index.min()), int(sums.index.max()) + 1, bin_ms, dtype=np.int64)
    ops = sums.reindex(full, fill_value=0).to_numpy(dtype=np.int64)
    return pd.DataFrame({"unix_ms": full, "ops": ops})


def plot_recovery(run_dir: StrPath, out_stem: StrPath, bin_ms: int = 10,
                  fronts: list[Frontier] | None = None) -> list[Path]:
    """The recovery figure (``recovery_figure``) as PDF and PNG."""
    return _save(recovery_figure(run_dir, bin_ms, fronts), out_stem)


def recovery_figure(run_dir: StrPath, bin_ms: int = 10,
                    fronts: list[Frontier] | None = None) -> Figure:
    """Total throughput over time with every fault of ``faults.log`` marked: a line per
    kill, a shaded span per pause, partition or added latency (start to its end); below
    it, when the run recorded its numbers, the highest contiguous number of each space
    (analysis/recovery.py), the paper's recovery figure. ``fronts`` saves reading the
    records again when the caller has them.

    Time 0 is ``measure_start`` when the fault log has it (the first bin otherwise); the
    warm-up and cool-down outside the measured window are shaded.
    """
    run_dir = Path(run_dir)
    if fronts is None and run_files(run_dir, "*.seqnums"):
        fronts = run_frontiers(run_dir)
    series = total_series(run_dir, bin_ms)
    faults_path = run_dir / "faults.log"
    events = read_faults(faults_path) if faults_path.exists() else []
    marks = {e.event: e.unix_ms for e in events if e.event in _MARKERS}
    if "measure_start" in marks:
        t0 = marks["measure_start"]
    elif len(series):
        t0 = int(series["unix_ms"].iloc[0])
    else:
        t0 = min((e.unix_ms for e in events), default=0)

    t = (series["unix_ms"].to_numpy() - t0) / 1000.0
    rate = series["ops"].to_numpy() * (1000.0 / bin_ms)
    scale, unit = _rate_unit(float(rate.max()) if rate.size else 0.0)

    panels = 2 if fronts else 1
    fig = _figure(9, 4.5 * panels)
    ax = fig.add_subplot(panels, 1, 1)
    if t.size:
        # A step per bin: the value is the bin's rate over its whole width.
        ax.step(
            np.append(t, t[-1] + bin_ms / 1000.0),
            np.append(rate, rate[-1]) / scale,
            where="post",
            color="tab:blue",
            linewidth=1.0,
            label=f"total throughput ({bin_ms} ms bins)",
        )
    else:
        ax.text(
            0.5,
            0.5,
            "no throughput series recorded",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="gray",
        )
    intervals, instants = fault_intervals(events)
    # Fix the time axis first (data, faults and window ends all visible): the shading and
    # the label layout below depend on it.
    edges = [(e.unix_ms - t0) / 1000.0 for e in events]
    if t.size:
        edges += [float(t[0]), float(t[-1]) + bin_ms / 1000.0]
    for front in fronts or []:
        if front.record_us.size:
            edges += [(int(front.record_us[i]) / 1000 - t0) / 1000.0 for i in (0, -1)]
    lo, hi = (min(edges), max(edges)) if edges else (0.0, 1.0)
    pad = max(hi - lo, 1e-3) * 0.01
    ax.set_xlim(lo - pad, hi + pad)
    _shade_outside_window(ax, marks, t0)
    _shade_intervals(ax, intervals, t0)
    starts = [iv.start for iv in intervals]
    labels = _mark_events(ax, sorted(instants + starts, key=lambda e: e.unix_ms), t0,
                          lines=instants)

    ax.set_xlabel(
        "time since start of measurement (s)"
        if "measure_start" in marks
        else "time since first completion (s)"
    )
    ax.set_ylabel(f"throughput ({unit})")
    ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1e-9) * 1.05)
    ax.grid(True, alpha=0.3)
    # Outside the axes: inside, it would hide part of the curve whatever corner it took.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    # The event labels sit in rows above the axes; the title goes above them.
    ax.set_title(f"Throughput over time: {run_dir.name}", pad=8 + 12 * labels)
    if fronts:
        _plot_frontiers(fig.add_subplot(2, 1, 2, sharex=ax), fronts, t0, marks, intervals,
                        instants)
    return fig


def _plot_frontiers(ax: Axes, fronts: list[Frontier], t0: int, marks: dict[str, int],
                    intervals: Sequence[FaultInterval], instants: Sequence[FaultEvent]) -> None:
    """The highest contiguous number of each space over time, one step line per space
    (gid ``frontier-<space>``), the same faults marked as above."""
    peak = max((int(f.highest[-1]) for f in fronts if f.highest.size), default=0)
    scale, unit = (1e6, " (millions)") if peak >= 1e6 else (1e3, " (thousands)") \
        if peak >= 1e4 else (1.0, "")
    _shade_outside_window(ax, marks, t0)
    _shade_intervals(ax, intervals, t0)
    for e in instants:
        ax.axvline((e.unix_ms - t0) / 1000.0, color=EVENT_STYLES.get(e.event, "black"),
                   linestyle=EVENT_LINESTYLES.get(e.event, "--"), linewidth=1.2)
    lo, hi = ax.get_xlim()
    for front in fronts:
        x = (front.rise_us / 1000.0 - t0) / 1000.0
        # Held flat from the last rise to the right edge: the frontier stays there.
        ax.step(np.append(x, hi), np.append(front.highest, front.highest[-1:]) / scale
                if front.highest.size else np.zeros(1), where="post", linewidth=1.0,
                label=f"space {front.space}", gid=f"frontier-{front.space}")
    ax.set_xlim(lo, hi)
    ax.set_xlabel(
        "time since start of measurement (s)"
        if "measure_start" in marks
        else "time since first completion (s)"
    )
    ax.set_ylabel(f"highest contiguous number{unit}")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title("Highest number below which every number is taken, per space", fontsize=9)


def plot_throughput_latency(
    df: pd.DataFrame, out_stem: StrPath, title: str | None = None
) -> list[Path]:
    """Median latency (and p99, when ``df`` has ``p99_us``) against throughput, one line per
    configuration; the original's ``plot_datfiles.gnu`` figure. ``title`` replaces the
    default figure title."""
    missing = {"config", "throughput_ops", "p50_us"} - set(df.columns)
    if missing:
        raise ValueError(f"missing columns: {sorted(missing)}")
    panels = [("p50_us", "median latency (µs)")]
    if "p99_us" in df.columns:
        panels.append(("p99_us", "p99 latency (µs)"))
    scale, unit = _rate_unit(float(df["throughput_ops"].max()) if len(df) else 0.0)

    fig = _figure(6.5 * len(panels), 4.5)
    axes = [fig.add_subplot(1, len(panels), i + 1) for i in range(len(panels))]
    markers = "osD^vP*X<>"
    for ax, (col, ylabel) in zip(axes, panels, strict=True):
        for i, (config, group) in enumerate(df.groupby("config", sort=True)):
            g = group.sort_values("throughput_ops")
            ax.plot(
                g["throughput_ops"].to_numpy() / scale,
                g[col].to_numpy(),
                marker=markers[i % len(markers)],
                markersize=4,
                linewidth=1.2,
                label=str(config),
            )
        ax.set_xlabel(f"throughput ({unit})")
        ax.set_ylabel(ylabel)
        ax.set_xlim(left=0)
        # Headroom above the highest point: with the axis pinned at 0, autoscaling leaves
        # only a few percent of the data's spread and the top marker sits on the frame.
        ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1e-9) * 1.06)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_formatter(FuncFormatter(_plain_number))
    axes[0].legend(fontsize=8, title="configuration", title_fontsize=8)
    fig.suptitle(title or "Throughput against latency")
    fig.tight_layout()
    return _save(fig, out_stem)


def plot_scaling(df: pd.DataFrame, out_stem: StrPath, title: str | None = None) -> list[Path]:
    """Peak throughput against proxy triples, one line per number of sequence spaces.

    ``df`` has one row per (``nsequence_spaces``, ``triples``) with ``throughput_ops``
    (e.g. ``analysis.suite_table.peak_throughput``); a tick at each number of triples run.
    """
    missing = {"nsequence_spaces", "triples", "throughput_ops"} - set(df.columns)
    if missing:
        raise ValueError(f"missing columns: {sorted(missing)}")
    scale, unit = _rate_unit(float(df["throughput_ops"].max()) if len(df) else 0.0)
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    markers = "osD^vP*X<>"
    for i, (spaces, group) in enumerate(df.groupby("nsequence_spaces", sort=True)):
        g = group.sort_values("triples")
        n = int(spaces)
        ax.plot(
            g["triples"].to_numpy(),
            g["throughput_ops"].to_numpy() / scale,
            marker=markers[i % len(markers)],
            markersize=5,
            linewidth=1.2,
            label=f"{n} space{'s' if n != 1 else ''}",
        )
    # Linear axes from 0: perfect scaling is then a straight line through the origin.
    ticks = sorted({int(t) for t in df["triples"]}) or [1]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(_plain_number))
    ax.set_xlim(0, ticks[-1] * 1.08 + 0.5)
    ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1e-9) * 1.1)
    ax.set_xlabel("proxy triples (3 proxy machines each)")
    ax.set_ylabel(f"peak throughput ({unit})")
    ax.grid(True, alpha=0.3)
    if len(df):
        ax.legend(fontsize=8)
    ax.set_title(title or "Peak throughput against proxy triples")
    fig.tight_layout()
    return _save(fig, out_stem)


# ---------------------------------------------------------------------------------------------
# helpers


def _rate_unit(peak: float) -> tuple[float, str]:
    """Divisor and unit so that tick labels stay short."""
    if peak >= 1e6:
        return 1e6, "Mops/s"
    if peak >= 1e4:
        return 1e3, "kops/s"
    return 1.0, "ops/s"


def _plain_number(x: float, _pos: object) -> str:
    return f"{x:g}"


def _shade_outside_window(ax: Axes, marks: dict[str, int], t0: int) -> None:
    lo, hi = ax.get_xlim()
    label: str | None = "outside measured window"  # one legend entry for both sides
    if "measure_start" in marks and lo < 0:
        ax.axvspan(lo, 0, color="0.9", zorder=0, label=label)
        label = None
    if "measure_end" in marks:
        end = (marks["measure_end"] - t0) / 1000.0
        if end < hi:
            ax.axvspan(end, hi, color="0.9", zorder=0, label=label)
    ax.set_xlim(lo, hi)


def _shade_intervals(ax: Axes, intervals: Sequence[FaultInterval], t0: int) -> None:
    """A translucent span per interval fault, to the right edge when it never ended."""
    lo, hi = ax.get_xlim()
    seen: set[str] = set()
    for iv in intervals:
        start = (iv.start.unix_ms - t0) / 1000.0
        end = hi if iv.end_ms is None else (iv.end_ms - t0) / 1000.0
        kind = iv.start.event
        ax.axvspan(start, end, color=EVENT_STYLES.get(kind, "black"), alpha=0.18, zorder=0,
                   label=None if kind in seen else kind.replace("_", " "))
        seen.add(kind)
    ax.set_xlim(lo, hi)


def _mark_events(ax: Axes, events: Sequence[FaultEvent], t0: int,
                 lines: Sequence[FaultEvent] | None = None) -> int:
    """Label above the axes per event, and a dashed vertical line for those in `lines`
    (all when None); returns the label rows.

    Labels that would overlap a neighbour move up a row: their extents are measured with the
    renderer, so the layout holds whatever the names and the time scale.
    """
    if not events:
        return 0
    fig = ax.figure
    assert isinstance(fig, Figure)
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    renderer = canvas.get_renderer()
    gap = 0.6 * 7.5 * fig.dpi / 72  # required space between labels: about half an em
    seen_kinds: set[str] = set()
    placed: list[list[Annotation]] = []
    times = [(e.unix_ms - t0) / 1000.0 for e in events]
    for e, x in sorted(zip(events, times, strict=True), key=lambda ev: ev[1]):
        color = EVENT_STYLES.get(e.event, "black")
        words = e.event.replace("_", " ")
        if lines is None or e in lines:
            kind_label = None if e.event in seen_kinds else words
            seen_kinds.add(e.event)
            ax.axvline(x, color=color, linestyle=EVENT_LINESTYLES.get(e.event, "--"),
                       linewidth=1.2, label=kind_label)
        text = f"{words} {e.target}" if e.target else words
        for row in range(len(placed) + 1):
            ann = ax.annotate(
                text,
                xy=(x, 1.0),
                xycoords=ax.get_xaxis_transform(),
                xytext=(0, 3 + 12 * row),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7.5,
                color=color,
                annotation_clip=False,
            )
            box = ann.get_window_extent(renderer).padded(gap)
            if row == len(placed):
                placed.append([ann])
                break
            if not any(box.overlaps(o.get_window_extent(renderer)) for o in placed[row]):
                placed[row].append(ann)
                break
            ann.remove()
    return len(placed)


def _figure(width: float, height: float) -> Figure:
    # Drawn at the PNG's resolution, so that text measured for the layout (hinted glyphs
    # differ slightly in width between resolutions) is the text written.
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def _save(fig: Figure, out_stem: StrPath) -> list[Path]:
    stem = str(out_stem)
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(stem + ".pdf"), Path(stem + ".png")]
    for p in paths:
        # "tight" keeps the labels above the axes inside the image.
        fig.savefig(p, dpi=_DPI, bbox_inches="tight")
    return paths
