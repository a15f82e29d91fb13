"""Plots of a run's metrics, each returned as PNG bytes ready to embed in the HTML report.

Input: plain names and numbers already read from `metrics.json` (see `distillrec.report.html` for its shape).
Output: `bytes` of one PNG per plot. The figures are drawn on matplotlib's Agg canvas (`FigureCanvasAgg`), never
through `pyplot`, so no display, no global figure state, and the same figure on every machine.

- `pareto_front(params, quality)`: indices of the models no other model dominates, where j dominates i when
  params_j <= params_i and quality_j >= quality_i with at least one inequality strict (fewer parameters and
  higher quality are both better); sorted by params.
- `training_curves`: validation NDCG@10 and training loss per epoch (loss on a log axis when all positive).
- `quality_vs_params`: test NDCG@10 against parameters (log x), with the Pareto front as a staircase: for any
  parameter budget the best NDCG@10 reachable within it.
- `slice_bars`: NDCG@10 on head / tail / cold targets, grouped by slice, one bar per model.
- `agreement_bars`: share of each student's top-10 that the teacher also ranks in its top-10.
- `paired_seeds`: KD vs plain student per seed, one line joining the two runs that share a seed.
- `low_data_curve`: test NDCG@10 against the share of the target's users a transfer run kept, one line per
  method (the carried-over teacher zero-shot, each student with KD and without).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = [
    "SeedPair",
    "pareto_front",
    "model_colours",
    "training_curves",
    "quality_vs_params",
    "slice_bars",
    "agreement_bars",
    "paired_seeds",
    "low_data_curve",
]

_DPI = 110
_KIND_MARKERS = {
    "baseline": "s",
    "text_only": "D",
    "teacher": "*",
    "student_kd": "o",
    "student_plain": "^",
    "compressed": "v",
}


@dataclass(frozen=True)
class SeedPair:
    """Per-seed test NDCG@10 of a KD student and the plain student it is compared with (same seeds, same order)."""

    kd_name: str
    plain_name: str
    seeds: list[int]
    kd_values: list[float]
    plain_values: list[float]
    p_value: float | None = None
    diff_ci95: tuple[float, float] | None = None


def pareto_front(params: Sequence[float], quality: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points (fewer params and higher quality are better), sorted by params."""
    if len(params) != len(quality):
        raise ValueError(f"params and quality differ in length: {len(params)} vs {len(quality)}")
    front = []
    for i, (p_i, q_i) in enumerate(zip(params, quality, strict=True)):
        dominated = any(
            p_j <= p_i and q_j >= q_i and (p_j < p_i or q_j > q_i)
            for p_j, q_j in zip(params, quality, strict=True)
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (params[i], -quality[i]))


def model_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per model (tab10, or tab20 beyond ten models), so a model looks the same in every plot."""
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: to_hex(cmap(i % cmap.N)) for i, name in enumerate(names)}


def _count(n: float) -> str:
    """1500 -> '1.5k', 2_000_000 -> '2M': axis labels for parameter counts."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return f"{n:g}"


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, list(axes)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def training_curves(histories: dict[str, list[dict]], colours: dict[str, str]) -> bytes:
    """histories: {model: [{"epoch", "loss", "valid_ndcg10" (float or None)}, ...]}."""
    fig, (ax_ndcg, ax_loss) = _figure(10, 3.8, ncols=2)
    all_positive = True
    for name, rows in histories.items():
        scored = [(r["epoch"], r["valid_ndcg10"]) for r in rows if r["valid_ndcg10"] is not None]
        if scored:
            ax_ndcg.plot(
                *zip(*scored, strict=True), marker="o", markersize=3, color=colours[name], label=name
            )
        ax_loss.plot([r["epoch"] for r in rows], [r["loss"] for r in rows], color=colours[name], label=name)
        all_positive = all_positive and all(r["loss"] > 0 for r in rows)
    ax_ndcg.set(title="Validation NDCG@10", xlabel="epoch", ylabel="NDCG@10")
    ax_loss.set(
        title="Training loss" + (" (log scale)" if all_positive else ""), xlabel="epoch", ylabel="loss"
    )
    if all_positive:
        ax_loss.set_yscale("log")
        ax_loss.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax_loss.yaxis.set_minor_formatter(NullFormatter())
    ax_loss.legend(fontsize=8, frameon=False, loc="upper right")
    return _png(fig)


def quality_vs_params(
    names: Sequence[str],
    kinds: Sequence[str],
    params: Sequence[float],
    quality: Sequence[float],
    colours: dict[str, str],
) -> bytes:
    """Test NDCG@10 against parameters (log x, every params > 0) with the Pareto front drawn as a staircase."""
    if any(p <= 0 for p in params):
        raise ValueError("quality_vs_params needs params > 0 for a log axis; leave the others out")
    fig, (ax,) = _figure(10, 4.8)
    front = pareto_front(params, quality)
    for name, kind, p, q in zip(names, kinds, params, quality, strict=True):
        ax.scatter(
            [p],
            [q],
            s=140 if kind == "teacher" else 60,
            marker=_KIND_MARKERS.get(kind, "o"),
            color=colours[name],
            edgecolor="black",
            linewidth=0.5,
            zorder=3,
            label=f"{name} ({kind})",
        )
        ax.annotate(name, (p, q), xytext=(6, 5), textcoords="offset points", fontsize=8)
    # Staircase: from each front point, flat until the next front point's size, then up to its quality.
    xs = [params[i] for i in front] + [max(params) * 1.6]
    ys = [quality[i] for i in front] + [quality[front[-1]]]
    ax.plot(
        xs,
        ys,
        drawstyle="steps-post",
        linestyle="--",
        color="#555555",
        linewidth=1.2,
        zorder=2,
        label="Pareto front",
    )
    ax.scatter(
        [params[i] for i in front],
        [quality[i] for i in front],
        s=260,
        facecolor="none",
        edgecolor="#555555",
        linewidth=1.0,
        zorder=2,
    )
    ax.set_xscale("log")
    ax.set_xlim(min(params) / 2, max(params) * 1.6)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _count(v)))
    ax.set(title="Quality vs size (test)", xlabel="parameters (log scale)", ylabel="NDCG@10")
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(fig)


def slice_bars(
    slices: dict[str, dict[str, float]], slice_users: dict[str, int | None], colours: dict[str, str]
) -> bytes:
    """slices: {model: {slice: NDCG@10}}; slice_users: {slice: users in it, or None when models disagree}."""
    order = list(slice_users)
    fig, (ax,) = _figure(10, 3.8)
    width = 0.8 / len(slices)
    for m, (name, values) in enumerate(slices.items()):
        xs = [s + (m - (len(slices) - 1) / 2) * width for s, key in enumerate(order) if key in values]
        heights = [values[key] for key in order if key in values]
        ax.bar(xs, heights, width=width * 0.95, color=colours[name], label=name)
        for x, height in zip(xs, heights, strict=True):
            if height == 0:  # an empty bar would look like a missing one
                ax.annotate("0", (x, 0), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(
        range(len(order)),
        [key if slice_users[key] is None else f"{key}\n({slice_users[key]:,} users)" for key in order],
    )
    ax.set(title="NDCG@10 by target popularity (test)", ylabel="NDCG@10")
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(fig)


def agreement_bars(overlaps: dict[str, float], colours: dict[str, str]) -> bytes:
    """overlaps: {student: mean share of its top-10 also in the teacher's top-10}, in [0, 1]."""
    fig, (ax,) = _figure(10, 0.8 + 0.5 * len(overlaps))
    names = list(overlaps)[::-1]  # first model on top
    values = [overlaps[n] for n in names]
    ax.barh(names, values, color=[colours[n] for n in names], height=0.6)
    for y, value in enumerate(values):
        ax.text(value + 0.01, y, f"{value:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set(
        title="Top-10 overlap with the teacher (test)",
        xlabel="share of the student's top-10 in the teacher's",
    )
    return _png(fig)


def paired_seeds(pairs: Sequence[SeedPair], colours: dict[str, str]) -> bytes:
    """One panel per KD/plain pair: the two test NDCG@10 of each seed, joined by a line."""
    fig, axes = _figure(min(10, 4 * len(pairs) + 1), 3.8, ncols=len(pairs))
    for ax, pair in zip(axes, pairs, strict=True):
        for seed, plain, kd in zip(pair.seeds, pair.plain_values, pair.kd_values, strict=True):
            better = kd > plain
            ax.plot([0, 1], [plain, kd], color="#2a7f3f" if better else "#b33a3a", linewidth=1, alpha=0.8)
            ax.annotate(
                f"seed {seed}", (1, kd), xytext=(6, 0), textcoords="offset points", fontsize=7, va="center"
            )
        ax.scatter([0] * len(pair.seeds), pair.plain_values, color=colours[pair.plain_name], zorder=3, s=30)
        ax.scatter([1] * len(pair.seeds), pair.kd_values, color=colours[pair.kd_name], zorder=3, s=30)
        ax.set_xticks([0, 1], [pair.plain_name, pair.kd_name], fontsize=8)
        ax.set_xlim(-0.4, 1.6)
        ax.set_ylabel("test NDCG@10")
        subtitle = []
        if pair.p_value is not None:
            subtitle.append(f"p = {pair.p_value:.3g}")
        if pair.diff_ci95 is not None:
            subtitle.append(f"diff 95% CI [{pair.diff_ci95[0]:+.4f}, {pair.diff_ci95[1]:+.4f}]")
        ax.set_title("KD vs plain, per seed" + ("\n" + ", ".join(subtitle) if subtitle else ""), fontsize=10)
    return _png(fig)


def low_data_curve(shares: Sequence[float], series: dict[str, Sequence[float]]) -> bytes:
    """series: {method: test NDCG@10 at each share of `shares` (ascending)}; one line per method."""
    fig, (ax,) = _figure(7, 4)
    colours = model_colours(list(series))
    for name, values in series.items():
        ax.plot(shares, values, marker="o", color=colours[name], label=name, linewidth=1.5)
    ax.set_xscale("log")  # 10%, 25%, 100%: evenly apart
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(list(shares), [f"{share:.0%}" for share in shares])
    ax.set(
        title="Low-data curve: the source teacher carried to the target",
        xlabel="share of the target's users kept",
        ylabel="test NDCG@10",
    )
    ax.legend(fontsize=8)
    return _png(fig)
