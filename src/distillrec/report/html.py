"""One self-contained HTML report of a run: `run_dir/metrics.json` in, `run_dir/report.html` out.

The page needs nothing but itself: inline CSS, no JavaScript, no CDN, plots embedded as base64 PNG
(`<img src="data:image/png;base64,...">`), so it opens offline and can be mailed or archived as one file.
Every piece of text from `metrics.json` (model names, dataset name, ...) is escaped with `html.escape`.

Shape of `metrics.json` (numbers are test-split values of a full-ranking evaluation: every item scored, the
user's known history masked):

    {
      "dataset": {"name": "ml-100k", "users": 943, "items": 1682, "interactions": 100000,
                  "split": "leave_one_out"},
      "models": {
        "<model name>": {
          "kind": "baseline" | "text_only" | "teacher" | "student_kd" | "student_plain" | "compressed",
          "test": {"NDCG@10": .., "HR@10": .., "MRR": .., "Recall@20": .., "NDCG@20": .., "Coverage@10": ..},
          "valid": {...same keys...},
          "params": 12345,
          "train_seconds": 12.3,
          "seeds": [{"seed": 0, "test": {"NDCG@10": .., ...}}, ...],         optional (students: several seeds)
          "ci95": {"NDCG@10": [lo, hi], ...},                                optional (over seeds or bootstrap)
          "slices": {"head": {"users": n, "NDCG@10": ..}, "tail": {...}, "cold": {...}},       optional
          "history": [{"epoch": 1, "loss": .., "valid_ndcg10": .. or null, "seconds": ..}, ...],  optional
          "kd": ["soft", "rd"]                                               optional (students)
          "weights_bytes": 268123, "latency_ms_p50": 0.6, "latency_ms_p99": 0.9    optional (serving cost)
        }, ...
      },
      "agreement": {"<student name>": {"top10_overlap_with_teacher": 0.41}, ...},           optional
      "comparison": {"<student_kd name>": {"vs": "<student_plain name>", "p_value": ..,
                                           "diff_ci95": [lo, hi]}}                          optional
    }

Checked (a missing or mistyped one raises `MetricsError` naming it): every key the report reads, that is all
of the above except `valid`, `test` metrics other than NDCG@10 / HR@10 / MRR / Recall@20, and
`history[].seconds`, which are documented for the writer but not shown. Optional sections are checked when
present, and names in `agreement` and `comparison` must be models.

Report: a header (dataset, split, protocol, creation time, distillrec version); a table of every model sorted
by kind (in the order above) then test NDCG@10, with "± half-width" of `ci95` where present and the best value of
each metric column in bold; then the plots of `distillrec.report.plots`, each replaced by a one-line note when
its data is absent.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from distillrec import __version__
from distillrec.report import plots

__all__ = ["KINDS", "TABLE_METRICS", "MetricsError", "validate_metrics", "render_report", "build_report"]

KINDS = ("baseline", "text_only", "teacher", "student_kd", "student_plain", "compressed")
TABLE_METRICS = ("NDCG@10", "HR@10", "MRR", "Recall@20")
_DATASET_KEYS = ("name", "users", "items", "interactions", "split")
_SLICE_ORDER = ("head", "tail", "cold")


class MetricsError(ValueError):
    """metrics.json does not have the shape the report reads; the message names the key."""


# ---------------------------------------------------------------------------------------------- validation


def _object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise MetricsError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _key(mapping: dict, key: str, where: str):
    if key not in _object(mapping, where):
        raise MetricsError(f'missing key "{key}" in {where}')
    return mapping[key]


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetricsError(f"{where} must be a number, got {value!r}")
    return float(value)


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise MetricsError(f"{where} must be a list, got {type(value).__name__}")
    return value


def _interval(value, where: str) -> None:
    if not isinstance(value, list) or len(value) != 2:
        raise MetricsError(f"{where} must be a list [low, high], got {value!r}")
    low, high = _number(value[0], f"{where}[0]"), _number(value[1], f"{where}[1]")
    if low > high:
        raise MetricsError(f"{where} has low > high: {value!r}")


def _check_model(name: str, model: dict) -> None:
    where = f'models["{name}"]'
    kind = _key(model, "kind", where)
    if kind not in KINDS:
        raise MetricsError(f'{where}["kind"] is {kind!r}; valid kinds: {", ".join(KINDS)}')
    test = _key(model, "test", where)
    for metric in TABLE_METRICS:
        _number(_key(test, metric, f'{where}["test"]'), f'{where}["test"]["{metric}"]')
    _number(_key(model, "params", where), f'{where}["params"]')
    _number(_key(model, "train_seconds", where), f'{where}["train_seconds"]')
    for i, run in enumerate(_list(model.get("seeds", []), f'{where}["seeds"]')):
        at = f'{where}["seeds"][{i}]'
        _number(_key(run, "seed", at), f'{at}["seed"]')
        _number(_key(_key(run, "test", at), "NDCG@10", f'{at}["test"]'), f'{at}["test"]["NDCG@10"]')
    for metric, interval in _object(model.get("ci95", {}), f'{where}["ci95"]').items():
        _interval(interval, f'{where}["ci95"]["{metric}"]')
    for slice_name, values in _object(model.get("slices", {}), f'{where}["slices"]').items():
        at = f'{where}["slices"]["{slice_name}"]'
        _number(_key(values, "users", at), f'{at}["users"]')
        _number(_key(values, "NDCG@10", at), f'{at}["NDCG@10"]')
    for i, row in enumerate(_list(model.get("history", []), f'{where}["history"]')):
        at = f'{where}["history"][{i}]'
        _number(_key(row, "epoch", at), f'{at}["epoch"]')
        _number(_key(row, "loss", at), f'{at}["loss"]')
        if _key(row, "valid_ndcg10", at) is not None:
            _number(row["valid_ndcg10"], f'{at}["valid_ndcg10"]')
    for key in ("weights_bytes", "latency_ms_p50", "latency_ms_p99"):
        if key in model:
            _number(model[key], f'{where}["{key}"]')
    if "kd" in model and not all(isinstance(k, str) for k in _list(model["kd"], f'{where}["kd"]')):
        raise MetricsError(f'{where}["kd"] must be a list of loss names, got {model["kd"]!r}')


def validate_metrics(metrics: dict) -> None:
    """Raise `MetricsError` naming the first missing or mistyped key the report reads."""
    dataset = _key(metrics, "dataset", "metrics.json")
    for key in _DATASET_KEYS:
        _key(dataset, key, '"dataset"')
    models = _object(_key(metrics, "models", "metrics.json"), '"models"')
    if not models:
        raise MetricsError('"models" is empty: the report needs at least one model')
    for name, model in models.items():
        _check_model(name, model)
    for name, entry in _object(metrics.get("agreement", {}), '"agreement"').items():
        if name not in models:
            raise MetricsError(f'"agreement" names "{name}", which is not in "models"')
        at = f'"agreement"["{name}"]'
        _number(_key(entry, "top10_overlap_with_teacher", at), f'{at}["top10_overlap_with_teacher"]')
    if metrics.get("multitask") is not None:
        rows = _object(_key(metrics["multitask"], "models", '"multitask"'), '"multitask"["models"]')
        for name, row in rows.items():
            at = f'"multitask"["models"]["{name}"]'
            for key in ("params", "ctr_AUC", "cvr_AUC", "ctcvr_AUC", "conversion_NDCG@10"):
                _number(_key(row, key, at), f'{at}["{key}"]')
    if metrics.get("transfer_curve") is not None:
        points = _object(
            _key(metrics["transfer_curve"], "points", '"transfer_curve"'), '"transfer_curve"["points"]'
        )
        for share, point in points.items():
            at = f'"transfer_curve"["points"]["{share}"]'
            _number(_key(point, "teacher", at), f'{at}["teacher"]')
            for label, row in _object(_key(point, "students", at), f'{at}["students"]').items():
                for key in ("kd", "plain"):
                    _number(
                        _key(row, key, f'{at}["students"]["{label}"]'),
                        f'{at}["students"]["{label}"]["{key}"]',
                    )
    for name, entry in _object(metrics.get("comparison", {}), '"comparison"').items():
        at = f'"comparison"["{name}"]'
        vs = _key(entry, "vs", at)
        for model_name in (name, vs):
            if model_name not in models:
                raise MetricsError(f'{at} names "{model_name}", which is not in "models"')
        if entry.get("p_value") is not None:
            _number(entry["p_value"], f'{at}["p_value"]')
        if entry.get("diff_ci95") is not None:
            _interval(entry["diff_ci95"], f'{at}["diff_ci95"]')


# ---------------------------------------------------------------------------------------------- formatting


def _params(n: float) -> str:
    return f"{int(n):,}"


def _share(part: float, whole: float) -> str:
    pct = 100 * part / whole
    if pct >= 10:
        return f"{pct:.0f}%"
    if pct >= 1:
        return f"{pct:.1f}%"
    return f"{pct:.2g}%"


def _bytes(n: float) -> str:
    if n < 1024**2:
        return f"{n / 1024:,.0f} KiB"
    return f"{n / 1024**2:,.1f} MiB"


def _latency(model: dict) -> str:
    if "latency_ms_p50" not in model:
        return "–"
    return f"{model['latency_ms_p50']:.2f} / {model['latency_ms_p99']:.2f} ms"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _img(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{escape(alt)}">'


def _section(title: str, body: str) -> str:
    return f"<section>\n<h2>{escape(title)}</h2>\n{body}\n</section>"


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _figure(png: bytes, alt: str, caption: str) -> str:
    return f"<figure>{_img(png, alt)}<figcaption>{escape(caption)}</figcaption></figure>"


# ---------------------------------------------------------------------------------------------- sections


def _ordered(models: dict) -> list[str]:
    return sorted(models, key=lambda n: (KINDS.index(models[n]["kind"]), -models[n]["test"]["NDCG@10"], n))


def _reference_teacher(models: dict) -> str | None:
    """The teacher the "% of teacher" column compares with: the row named "teacher" where a run's metrics have
    one (the rows that wrap it, `teacher_cold_fallback` and `teacher_text_blend`, count the text table a second
    time), else the best teacher row by test NDCG@10."""
    if models.get("teacher", {}).get("kind") == "teacher" and models["teacher"]["params"] > 0:
        return "teacher"
    teachers = [n for n in models if models[n]["kind"] == "teacher" and models[n]["params"] > 0]
    return max(teachers, key=lambda n: models[n]["test"]["NDCG@10"]) if teachers else None


def _header(metrics: dict, created: datetime) -> str:
    ds = metrics["dataset"]
    facts = [
        (
            "Dataset",
            f"{ds['name']}: {_params(ds['users'])} users, {_params(ds['items'])} items, "
            f"{_params(ds['interactions'])} interactions",
        ),
        ("Split", str(ds["split"])),
        (
            "Protocol",
            "full ranking: every item is scored, the user's known history is masked; "
            "numbers are on the test split",
        ),
        ("Created", created.astimezone(UTC).isoformat(timespec="seconds")),
        ("distillrec", __version__),
    ]
    rows = "\n".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    return f"<header>\n<h1>distillrec report: {escape(str(ds['name']))}</h1>\n<dl>\n{rows}\n</dl>\n</header>"


def _table(models: dict, order: list[str]) -> str:
    teacher = _reference_teacher(models)
    best = {m: max(round(models[n]["test"][m], 4) for n in order) for m in TABLE_METRICS}
    share_head = "% of teacher" + (f'<span class="detail">{escape(teacher)}</span>' if teacher else "")
    head = (
        "<th>model</th><th>kind</th>"
        + "".join(f'<th class="num">{escape(m)}</th>' for m in TABLE_METRICS)
        + f'<th class="num">params</th><th class="num">{share_head}</th><th class="num">train time</th>'
        + '<th class="num">on disk</th><th class="num">top-10 latency<span class="detail">p50 / p99</span></th>'
    )
    body = []
    for name in order:
        model = models[name]
        details = []
        if model.get("kd"):
            details.append("KD: " + " + ".join(model["kd"]))
        if model.get("seeds"):
            details.append(f"{len(model['seeds'])} seeds")
        label = escape(name) + (
            f'<span class="detail">{escape(", ".join(details))}</span>' if details else ""
        )
        cells = [f'<td class="name">{label}</td>', f"<td>{escape(model['kind'])}</td>"]
        for metric in TABLE_METRICS:
            value = model["test"][metric]
            text = f"{value:.4f}"
            if round(value, 4) == best[metric]:
                text = f"<strong>{text}</strong>"
            interval = model.get("ci95", {}).get(metric)
            if interval is not None:
                low, high = interval
                text += (
                    f'<span class="ci" title="95% CI [{low:.4f}, {high:.4f}]"> ± '
                    f"{(high - low) / 2:.4f}</span>"
                )
            cells.append(f'<td class="num">{text}</td>')
        share = _share(model["params"], models[teacher]["params"]) if teacher else "–"
        cells += [
            f'<td class="num">{_params(model["params"])}</td>',
            f'<td class="num">{share}</td>',
            f'<td class="num">{_duration(model["train_seconds"])}</td>',
            f'<td class="num">{_bytes(model["weights_bytes"]) if "weights_bytes" in model else "–"}</td>',
            f'<td class="num">{_latency(model)}</td>',
        ]
        body.append(f'<tr class="kind-{escape(model["kind"])}">{"".join(cells)}</tr>')
    caption = (
        "Test split, full ranking. ± is half the width of the 95% interval (over seeds or bootstrap) "
        "where the run recorded one (hover for the interval). Bold: best value of each metric column. "
        "On disk: the weights a model folder stores (state and array parameters). Latency: one user's "
        "full-catalogue top-10 through distillrec.load(...).recommend, one request at a time, on this run's "
        "machine and threads."
    )
    return (
        f'<table id="models">\n<caption>{escape(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"
    )


def _comparison_table(metrics: dict) -> str:
    rows = []
    for name, entry in metrics.get("comparison", {}).items():
        p = entry.get("p_value")
        ci = entry.get("diff_ci95")
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{escape(entry['vs'])}</td>"
            f'<td class="num">{"–" if p is None else f"{p:.3g}"}</td>'
            f'<td class="num">{"–" if ci is None else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"}</td></tr>'
        )
    if not rows:
        return ""
    return (
        '<table id="comparison">\n<caption>Paired test of KD against the plain student on test NDCG@10'
        '</caption>\n<thead><tr><th>KD student</th><th>vs</th><th class="num">p-value</th>'
        '<th class="num">NDCG@10 difference (KD - plain), 95% CI</th></tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _multitask_table(metrics: dict) -> str:
    """The multi-task stage's models (optional `"multitask"` key: `stages/report.multitask_rows`)."""
    section = metrics.get("multitask")
    if not section:
        return ""
    rows = []
    for name, row in section["models"].items():
        p = row.get("p_vs_alone")
        cells = "".join(
            f'<td class="num">{row[m]:.4f}</td>'
            for m in ("ctr_AUC", "cvr_AUC", "ctcvr_AUC", "conversion_NDCG@10")
        )
        rows.append(
            f'<tr><td>{escape(name)}</td><td class="num">{_params(row["params"])}</td>{cells}'
            f'<td class="num">{"–" if p is None else f"{p:.3g}"}</td></tr>'
        )
    seeds = ", ".join(str(s) for s in section["seeds"])
    return _section(
        "Multi-task: click and conversion",
        f'<table id="multitask">\n<caption>Test impressions, means over seeds {escape(seeds)}; p: paired t-test of '
        "conversion NDCG@10 against the student alone</caption>\n<thead><tr><th>model</th>"
        '<th class="num">params</th><th class="num">CTR AUC</th><th class="num">CVR AUC</th>'
        '<th class="num">CTCVR AUC</th><th class="num">conversion NDCG@10</th><th class="num">p</th></tr>'
        "</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>",
    )


def _transfer_curve(metrics: dict) -> str:
    """A transfer run's low-data curve (optional `"transfer_curve"` key: `stages/report.curve_rows`)."""
    section = metrics.get("transfer_curve")
    if not section:
        return ""
    points = section["points"]
    shares = [float(share) for share in points]
    labels = list(next(iter(points.values()))["students"])
    series = {"teacher, zero-shot": [p["teacher"] for p in points.values()]}
    for label in labels:
        series[f"{label} (KD)"] = [p["students"][label]["kd"] for p in points.values()]
        series[f"{label} (no KD)"] = [p["students"][label]["plain"] for p in points.values()]
    head = "".join(f'<th class="num">{escape(name)}</th>' for name in series)
    rows = []
    for i, (share, point) in enumerate(points.items()):
        cells = "".join(f'<td class="num">{values[i]:.4f}</td>' for values in series.values())
        rows.append(f"<tr><td>{float(share):.0%} ({point['users']:,} users)</td>{cells}</tr>")
    table = (
        f'<table id="transfer-curve">\n<caption>Test NDCG@10 of the teacher carried over from '
        f"{escape(section['source'])} and of each student, by the share of the target's users kept (means "
        f"over seeds)</caption>\n<thead><tr><th>users kept</th>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )
    figure = _figure(
        plots.low_data_curve(shares, series),
        "low-data curve",
        "Test NDCG@10 against the share of the target's users the run kept (the others not seen at all).",
    )
    return _section("Transfer: the low-data curve", table + figure)


def _seed_pairs(metrics: dict) -> list[plots.SeedPair]:
    """KD/plain pairs from `comparison`; without it, each KD student against the only plain student, if one."""
    models = metrics["models"]
    if "comparison" in metrics:
        pairs = [(name, entry["vs"], entry) for name, entry in metrics["comparison"].items()]
    else:
        plain = [n for n in models if models[n]["kind"] == "student_plain"]
        kd = [n for n in models if models[n]["kind"] == "student_kd"]
        pairs = [(n, plain[0], {}) for n in kd] if len(plain) == 1 else []
    out = []
    for kd_name, plain_name, entry in pairs:
        kd_runs = {r["seed"]: r["test"]["NDCG@10"] for r in models[kd_name].get("seeds", [])}
        plain_runs = {r["seed"]: r["test"]["NDCG@10"] for r in models[plain_name].get("seeds", [])}
        seeds = sorted(set(kd_runs) & set(plain_runs))
        if not seeds:
            continue
        ci = entry.get("diff_ci95")
        out.append(
            plots.SeedPair(
                kd_name,
                plain_name,
                [int(s) for s in seeds],
                [kd_runs[s] for s in seeds],
                [plain_runs[s] for s in seeds],
                entry.get("p_value"),
                None if ci is None else (ci[0], ci[1]),
            )
        )
    return out


def _plots(metrics: dict, order: list[str]) -> list[str]:
    models = metrics["models"]
    colours = plots.model_colours(order)
    sections = []

    histories = {n: models[n]["history"] for n in order if models[n].get("history")}
    sections.append(
        _section(
            "Training curves",
            _figure(
                plots.training_curves(histories, colours),
                "training curves",
                "Validation NDCG@10 (epochs where it was measured) and training loss per epoch.",
            )
            if histories
            else _note("Skipped: no model has a training history."),
        )
    )

    sized = [n for n in order if models[n]["params"] > 0]
    unsized = [n for n in order if models[n]["params"] <= 0]
    if sized:
        png = plots.quality_vs_params(
            sized,
            [models[n]["kind"] for n in sized],
            [models[n]["params"] for n in sized],
            [models[n]["test"]["NDCG@10"] for n in sized],
            colours,
        )
        caption = (
            "Test NDCG@10 against parameters (log scale). Dashed staircase: the Pareto front, the best "
            "NDCG@10 reachable within each parameter budget; circled models are on it."
        )
        if unsized:
            caption += " Not drawn (no parameters to place on a log axis): " + ", ".join(unsized) + "."
        body = _figure(png, "quality vs parameters", caption)
    else:
        body = _note("Skipped: no model has a positive parameter count.")
    sections.append(_section("Quality vs size", body))

    sliced = {n: models[n]["slices"] for n in order if models[n].get("slices")}
    if sliced:
        names = {s for values in sliced.values() for s in values}
        slice_order = [s for s in _SLICE_ORDER if s in names] + sorted(names - set(_SLICE_ORDER))
        slice_users = {}
        for s in slice_order:
            counts = {int(v[s]["users"]) for v in sliced.values() if s in v}
            slice_users[s] = counts.pop() if len(counts) == 1 else None
        ndcg = {n: {s: v["NDCG@10"] for s, v in values.items()} for n, values in sliced.items()}
        body = _figure(
            plots.slice_bars(ndcg, slice_users, colours),
            "NDCG@10 by slice",
            "Test NDCG@10 of the users whose held-out item is popular (head), in the long tail (tail) "
            "or unseen in training (cold).",
        )
    else:
        body = _note("Skipped: no model has head/tail/cold slices.")
    sections.append(_section("Head, tail and cold items", body))

    agreement = {
        n: metrics["agreement"][n]["top10_overlap_with_teacher"]
        for n in order
        if n in metrics.get("agreement", {})
    }
    sections.append(
        _section(
            "Agreement with the teacher",
            _figure(
                plots.agreement_bars(agreement, colours),
                "top-10 overlap with the teacher",
                "Mean share of each model's top-10 that the teacher also ranks in its top-10 (test users).",
            )
            if agreement
            else _note("Skipped: metrics.json has no teacher agreement."),
        )
    )

    pairs = _seed_pairs(metrics)
    comparison = _comparison_table(metrics)
    if pairs:
        body = (
            _figure(
                plots.paired_seeds(pairs, colours),
                "KD vs plain per seed",
                "Test NDCG@10 of each seed; a line joins the KD and plain runs of the same seed "
                "(green: KD higher, red: KD lower).",
            )
            + comparison
        )
    else:
        body = _note("Skipped: no KD and plain student share a seed.") + comparison
    sections.append(_section("Distillation vs plain training", body))
    return sections


_CSS = """
body { font-family: "Liberation Sans", "DejaVu Sans", Arial, sans-serif; color: #222; background: #fff;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; margin: 0; }
dt { font-weight: bold; color: #555; }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; margin: 1em 0; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 0.88em; padding-top: 0.5em; }
th, td { padding: 0.35em 0.6em; border-bottom: 1px solid #e5e5e5; text-align: left; vertical-align: top; }
th { background: #f3f3f3; border-bottom: 2px solid #ccc; }
table#comparison { width: auto; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
tr.kind-teacher td { background: #fff6e6; }
.detail { display: block; color: #777; font-size: 0.85em; }
.ci { color: #777; font-size: 0.88em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption, .note { color: #666; font-size: 0.88em; }
.note { font-style: italic; }
"""


def render_report(metrics: dict, created: datetime | None = None) -> str:
    """The report's HTML for validated-or-not `metrics` (validated here); `created` defaults to now (UTC)."""
    validate_metrics(metrics)
    created = created or datetime.now(UTC)
    order = _ordered(metrics["models"])
    title = escape(f"distillrec report: {metrics['dataset']['name']}")
    parts = [
        _header(metrics, created),
        _section("Models", _table(metrics["models"], order)),
        *_plots(metrics, order),
        _multitask_table(metrics),
        _transfer_curve(metrics),
    ]
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<style>{_CSS}</style>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def build_report(run_dir: Path) -> Path:
    """Read `run_dir/metrics.json`, write `run_dir/report.html`, return its path."""
    run_dir = Path(run_dir)
    source = run_dir / "metrics.json"
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} does not exist: `distillrec report` reads a run folder's metrics.json"
        )
    metrics = json.loads(source.read_text())
    try:
        page = render_report(metrics)
    except MetricsError as exc:
        raise MetricsError(f"{source}: {exc}") from None
    target = run_dir / "report.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target
