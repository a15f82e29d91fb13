"""Render the committed benchmark results (benchmarks/results/**/metrics.json) as Markdown tables.

    .venv/bin/python benchmarks/render.py summary      # KD gains (method x dataset) and size/quality per dataset
    .venv/bin/python benchmarks/render.py baselines    # prints the baselines tables for BENCHMARKS.md
    .venv/bin/python benchmarks/render.py distill      # the KD-vs-plain tables, one per dataset (benchmarks/distill.py)
    .venv/bin/python benchmarks/render.py teacher      # teacher vs ID-only vs text-only vs the best baseline
    .venv/bin/python benchmarks/render.py softmax-ce   # the training loss, plain vs chunked (softmax_ce.py)
    .venv/bin/python benchmarks/render.py kd-step      # a KD step, terms on full scores vs on columns (kd_step.py)
    .venv/bin/python benchmarks/render.py compress     # quality, size and speed of compressed models (compress.py)
    .venv/bin/python benchmarks/render.py sampled-softmax  # sampled vs full softmax (sampled_softmax.py)
    .venv/bin/python benchmarks/render.py ddp-epochs   # s/epoch, 1 process vs 2 under torchrun (ddp_epochs.py)
    .venv/bin/python benchmarks/render.py scale        # time and memory against data size (scale.py)
    .venv/bin/python benchmarks/render.py transfer     # a teacher carried to another dataset (transfer.py)
    .venv/bin/python benchmarks/render.py text-blend   # the teacher blended with the text-only model (text_blend.py),
                                                       # and <tag>-seed<N> files summarised over seeds with <tag>
    .venv/bin/python benchmarks/render.py target-drift # validation vs test targets' popularity (target_drift.py)
    .venv/bin/python benchmarks/render.py tail-weight  # the blend with its own weight on rare items (tail_weight.py)
    .venv/bin/python benchmarks/render.py curves --out FILE.png LABEL=RESULTS_FILE:KEY ...
                                                       # validation NDCG@10 and loss per epoch of those runs
                                                       # (KEY: a dotted path, e.g. teacher, or
                                                       # param_init.student_kd.per_seed.0 in a distill file)
    .venv/bin/python benchmarks/render.py curves --epochs 10,20,30 LABEL=RESULTS_FILE:KEY ...
                                                       # the same runs' validation NDCG@10 at those epochs

Numbers are only ever copied into BENCHMARKS.md from this script's output.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from distillrec.evaluate.significance import seed_summary

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ("HR@10", "NDCG@10", "MRR", "Recall@20", "NDCG@20")


def stage_rows(path: Path) -> dict:
    """The models of a baselines or teacher `metrics.json`: `{"schema_version": 1, "models": {...}}`
    (`distillrec/results.py`), or the rows at the top level, as the older committed results have them."""
    data = json.loads(path.read_text())
    return data["models"] if "schema_version" in data else data


DATASETS = ("ml-100k", "ml-latest-small", "ml-1m", "amazon-beauty")
# distill result files the summary leaves out (`distill` renders them): ablations of where param_init's item table
# comes from and of batching, and ml-1m's run from its first teacher (superseded by the float32 one)
ASIDE = {
    "ml-100k/sasrec-dim32-init-from-id_only",
    "ml-100k/sasrec-dim32-init-from-text",
    "ml-100k/sasrec-dim32-length-buckets",
    "ml-1m/sasrec-dim32-seed0",
    "amazon-beauty/sasrec-dim8-tuned-encoder-teacher",  # another teacher (section 2's tuned encoder), one seed
}
# distill result files of the student-width curve (`render.py width`), one per student width
WIDTH_PREFIX = "width-"
# runs whose teacher was retrained into the same cache folder: its metrics are committed under another name
RETRAINED_TEACHER = {
    "ml-100k/sasrec-dim32-de-ced": "ml-100k-retrained",
    "ml-latest-small/sasrec-dim32-patience30-param-hard": "ml-latest-small-retrained",
    "ml-latest-small/sasrec-dim32-patience30-param-soft": "ml-latest-small-retrained",
    "amazon-beauty/sasrec-dim32-ced-seed0-fp32-teacher": "amazon-beauty-fp32-retrained",
    "amazon-beauty/two_tower-dim32-seed0": "amazon-beauty-fp32-retrained",
}


def baselines_table(dataset: str) -> str:
    path = RESULTS / "baselines" / dataset / "metrics.json"
    results = stage_rows(path)
    lines = [
        f"| model | {' | '.join(COLUMNS)} | valid NDCG@10 | params | train s | best hyperparameters |",
        "|---|" + "---:|" * (len(COLUMNS) + 3) + "---|",
    ]
    best = max(row["test"]["NDCG@10"] for row in results.values())
    for name, row in results.items():
        cells = [f"{row['test'][c]:.4f}" for c in COLUMNS]
        if row["test"]["NDCG@10"] == best:
            cells[1] = f"**{cells[1]}**"
        hp = ", ".join(f"{k}={v}" for k, v in row["best_hparams"].items()) or "-"
        lines.append(
            f"| {name} | {' | '.join(cells)} | {row['valid']['NDCG@10']:.4f} | {row['params']:,} | "
            f"{row['train_seconds']:.1f} | {hp} |"
        )
    return "\n".join(lines)


def distill_table(paths: list[Path]) -> str:
    """`benchmarks/distill.py` result files (tags) in one table: per file, its plain student (shared by the file's
    rows) and one row per KD spec."""
    lines = [
        "| tag | KD | test NDCG@10 (mean ± sd over seeds) | HR@10 | vs plain | 95% CI of the difference | p (paired t) "
        "| params (of teacher) | train s | epochs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cells(row: dict, versus: str) -> str:
        seeds = row["test_seeds"]["NDCG@10"]
        epochs = "/".join(str(r["epochs"]) for r in row["per_seed"])
        fraction = row["params_fraction_of_teacher"]
        share = f" ({100 * fraction:.1f}%)" if fraction else ""
        spread = "-" if seeds["std"] is None else f"{seeds['std']:.4f}"  # one seed: no spread
        return (
            f"{seeds['mean']:.4f} ± {spread} | "
            f"{row['test']['HR@10']:.4f} | {versus} | "
            f"{row['params']:,}{share} | {row['train_seconds']:.0f} | {epochs} |"
        )

    for path in paths:
        results = json.loads(path.read_text())
        lines.append(
            f"| `{path.stem}` | none | " + cells(next(iter(results.values()))["student_plain"], "- | - | -")
        )
        for spec, result in results.items():
            pooled = result["comparison"]["pooled"]
            relative = 100 * pooled["mean_diff"] / pooled["mean_b"]
            versus = (
                f"{relative:+.1f}% | [{pooled['diff_ci_low']:+.4f}, {pooled['diff_ci_high']:+.4f}] | "
                f"{pooled['t_pvalue']:.2g}"
            )
            lines.append(f"| | {spec} | " + cells(result["student_kd"], versus))
    return "\n".join(lines)


def teacher_table(folder: Path) -> str:
    """Teacher, ID-only SASRec of the same budget, text-only, and the dataset's best tuned baseline."""
    results = stage_rows(folder / "metrics.json")
    lines = [
        "| model | NDCG@10 | HR@10 | head NDCG@10 | tail NDCG@10 | valid NDCG@10 | params | train s | best epoch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "teacher": "LLM-enhanced teacher",
        "id_only": "ID-only SASRec, same budget",
        "text_only": "text only",
    }
    for key, label in names.items():
        if key not in results:
            continue
        row = results[key]
        slices = row.get("slices", {})
        head, tail = (slices.get(s, {}).get("NDCG@10") for s in ("head", "tail"))
        lines.append(
            f"| {label} | {row['test']['NDCG@10']:.4f} | {row['test']['HR@10']:.4f} | "
            f"{'-' if head is None else f'{head:.4f}'} | {'-' if tail is None else f'{tail:.4f}'} | "
            f"{row['valid']['NDCG@10']:.4f} | {row['params']:,} | {row['train_seconds']:.0f} | "
            f"{row.get('best_epoch') or '-'} |"
        )
    manifest = (
        folder / "manifest.json"
    )  # the dataset's name (a folder may be a variant, e.g. ml-1m-patience30)
    dataset = json.loads(manifest.read_text())["dataset"]["name"] if manifest.exists() else folder.name
    baselines = RESULTS / "baselines" / dataset / "metrics.json"
    if baselines.exists():
        rows = stage_rows(baselines)
        name = max(rows, key=lambda n: rows[n]["valid"]["NDCG@10"])
        row = rows[name]
        lines.append(
            f"| best tuned baseline on validation ({name}) | {row['test']['NDCG@10']:.4f} | {row['test']['HR@10']:.4f} "
            f"| - | - | {row['valid']['NDCG@10']:.4f} | {row['params']:,} | {row['train_seconds']:.0f} | - |"
        )
    return "\n".join(lines)


def headline_cells(dataset: str) -> dict[str, tuple[str, dict]]:
    """{KD spec: (tag, result)} of the specs measured on `dataset`, one tag each (files in ASIDE and the
    student-width curve's `width-*` files left out): where
    a spec ran under several tags, the one with the longest patience (30, the students' default). A student
    other than SASRec is named in the spec's label."""
    cells: dict[str, tuple[str, dict]] = {}
    for path in sorted((RESULTS / "distill" / dataset).glob("*.json")):
        if f"{dataset}/{path.stem}" in ASIDE or path.stem.startswith(WIDTH_PREFIX):
            continue
        for spec, result in json.loads(path.read_text()).items():
            student = result["student_kd"]["student"]
            label = spec if student == "sasrec" else f"{spec} ({student} student)"
            patience = result["student_kd"]["hparams"]["patience"]
            if label not in cells or patience > cells[label][1]["student_kd"]["hparams"]["patience"]:
                cells[label] = (path.stem, result)
    return cells


def gains_table() -> str:
    """KD spec x dataset: test NDCG@10 with KD vs without, relative change, 95% CI of the difference, paired-t p."""
    cells = {dataset: headline_cells(dataset) for dataset in DATASETS}

    def relative(result: dict) -> float:
        pooled = result["comparison"]["pooled"]
        return 100 * pooled["mean_diff"] / pooled["mean_b"]

    def cell(result: dict) -> str:
        pooled = result["comparison"]["pooled"]
        n = result["student_kd"]["test_seeds"]["NDCG@10"]["n"]
        return (
            f"{pooled['mean_a']:.4f} vs {pooled['mean_b']:.4f}: {relative(result):+.1f}% "
            f"[{pooled['diff_ci_low']:+.4f}, {pooled['diff_ci_high']:+.4f}] p={pooled['t_pvalue']:.2g} "
            f"({n} seed{'s' if n > 1 else ''})"
        )

    measured: dict[str, list[dict]] = {}  # spec -> its results on the datasets where it ran
    for found in cells.values():
        for spec, (_, result) in found.items():
            measured.setdefault(spec, []).append(result)
    # the specs measured on most datasets first, then by their mean gain
    order = sorted(
        measured, key=lambda s: (-len(measured[s]), -sum(map(relative, measured[s])) / len(measured[s]))
    )
    lines = ["| KD | " + " | ".join(DATASETS) + " |", "|---|" + "---|" * len(DATASETS)]
    for spec in order:
        row = [cell(cells[d][spec][1]) if spec in cells[d] else "-" for d in DATASETS]
        lines.append(f"| {spec} | " + " | ".join(row) + " |")
    lines.append(
        "\nWhere each cell comes from (`benchmarks/results/distill/<dataset>/<tag>.json`; patience 30 where the tag "
        "says so, 10 otherwise):\n"
    )
    for dataset, found in cells.items():
        tags: dict[str, list[str]] = {}
        for spec, (tag, _) in found.items():
            tags.setdefault(tag, []).append(spec)
        lines.append(
            f"- {dataset}: " + "; ".join(f"`{tag}` ({', '.join(s)})" for tag, s in sorted(tags.items()))
        )
    return "\n".join(lines)


def teacher_folder(command: str) -> Path:
    """The teacher folder a benchmark command (a result file's `command`) names after `--teacher`."""
    words = command.split()
    return Path(words[words.index("--teacher") + 1])


def seed_group(stem: str) -> str:
    """A result file's tag without its `-seed<N>` suffix: the tag the files of one command over seeds share."""
    return re.sub(r"-seed\d+$", "", stem)


def size_quality_table() -> str:
    """Per dataset: the best tuned baseline on validation, the teacher, and the student without KD and with the KD
    spec of best validation NDCG@10 (among `headline_cells`, SASRec students), from that spec's tag."""
    lines = [
        "| dataset | model | test NDCG@10 (mean over seeds [95% t-interval]) | valid NDCG@10 | params (of teacher) "
        "| train s |",
        "|---|---|---:|---:|---:|---:|",
    ]

    def test(row: dict) -> str:
        if "test_seeds" not in row:  # a baseline or a teacher: one run
            return f"{row['test']['NDCG@10']:.4f} (1 run)"
        s = row["test_seeds"]["NDCG@10"]
        if s["n"] == 1:
            return f"{s['mean']:.4f} (1 seed)"
        return f"{s['mean']:.4f} [{s['ci_low']:.4f}, {s['ci_high']:.4f}] ({s['n']} seeds)"

    for dataset in DATASETS:
        cells = {
            k: v for k, v in headline_cells(dataset).items() if v[1]["student_kd"]["student"] == "sasrec"
        }
        spec = max(cells, key=lambda s: cells[s][1]["student_kd"]["valid"]["NDCG@10"])
        tag, result = cells[spec]
        name = RETRAINED_TEACHER.get(f"{dataset}/{tag}", teacher_folder(result["command"]).name)
        teacher = stage_rows(RESULTS / "teacher" / name / "metrics.json")["teacher"]
        baselines = stage_rows(RESULTS / "baselines" / dataset / "metrics.json")
        best = max(baselines, key=lambda n: baselines[n]["valid"]["NDCG@10"])
        rows = {
            f"best tuned baseline on validation ({best})": baselines[best],
            f"teacher (`{name}`)": teacher,
            f"student, no KD (`{tag}`)": result["student_plain"],
            f"student + {spec} (`{tag}`, best KD on validation)": result["student_kd"],
        }
        for label, row in rows.items():
            lines.append(
                f"| {dataset} | {label} | {test(row)} | {row['valid']['NDCG@10']:.4f} | "
                f"{row['params']:,} ({100 * row['params'] / teacher['params']:.1f}%) | {row['train_seconds']:.0f} |"
            )
    return "\n".join(lines)


def teacher_label(command: str) -> str:
    """The teacher folder a benchmark command names: its name, or for a run's `teacher` folder the run's name
    without its time stamp (`runs/amazon-beauty-compress-20261205-055430/teacher` -> `amazon-beauty-compress`)."""
    folder = teacher_folder(command)
    return re.sub(r"-\d{8}-\d{6}$", "", folder.parent.name) if folder.name == "teacher" else folder.name


def width_table(dataset: str) -> str:
    """The student-width curve of `dataset`: one row per `width-*` distill result file (one KD spec each), by
    teacher, the student's width and epoch budget: test NDCG@10 with KD and without (mean over seeds [95%
    t-interval]), the relative gain, the 95% bootstrap CI of the paired difference and its paired-t p,
    validation NDCG@10 and the best epochs."""
    lines = [
        "| teacher | width | params (of teacher) | KD | max epochs | test NDCG@10 with KD | without | gain "
        "| 95% CI of the difference | p | valid NDCG@10 KD / without | best epochs KD / without |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def test(row: dict) -> str:
        s = row["test_seeds"]["NDCG@10"]
        interval = "" if s["n"] == 1 else f" [{s['ci_low']:.4f}, {s['ci_high']:.4f}]"
        return f"{s['mean']:.4f}{interval}"

    rows = []
    for path in (RESULTS / "distill" / dataset).glob(f"{WIDTH_PREFIX}*.json"):
        for spec, result in json.loads(path.read_text()).items():
            hparams = result["student_kd"]["hparams"]
            label = teacher_label(result["command"])
            rows.append((label, hparams["dim"], hparams["max_epochs"], spec, result))
    rows.sort(key=lambda row: row[:4])
    for teacher, dim, budget, spec, result in rows:
        kd, plain, pooled = result["student_kd"], result["student_plain"], result["comparison"]["pooled"]
        epochs = " / ".join(",".join(str(r["best_epoch"]) for r in row["per_seed"]) for row in (kd, plain))
        lines.append(
            f"| {teacher} | {dim} | {kd['params']:,} ({100 * kd['params_fraction_of_teacher']:.1f}%) | {spec} | "
            f"{budget} | "
            f"{test(kd)} | "
            f"{test(plain)} | {100 * pooled['mean_diff'] / pooled['mean_b']:+.1f}% | "
            f"[{pooled['diff_ci_low']:+.4f}, {pooled['diff_ci_high']:+.4f}] | {pooled['t_pvalue']:.2g} | "
            f"{kd['valid']['NDCG@10']:.4f} / {plain['valid']['NDCG@10']:.4f} | {epochs} |"
        )
    seeds = sorted({result["student_kd"]["test_seeds"]["NDCG@10"]["n"] for *_, result in rows})
    lines.append(f"\nSeeds per row: {', '.join(map(str, seeds))}. Commands:\n" if rows else "")
    lines += [f"    {result['command']}" for *_, result in rows]
    return "\n".join(lines)


def text_only_table(paths: list[Path]) -> str:
    """`benchmarks/text_only.py` files, one row per dataset and table (raw, centred): NDCG@10 on validation and
    test, the test's tail and cold slices, and the validation pick; a tuned encoder's rows say how it was tuned
    and in how long."""
    lines = [
        "| dataset | items | item vectors | valid NDCG@10 | test NDCG@10 | tail NDCG@10 | cold NDCG@10 (users) "
        "| picked on validation |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for path in paths:
        result = json.loads(path.read_text())
        tuned = ""  # how a tuned encoder was tuned, after each row's label
        if "tuning" in result:
            settings = result["tuning"]["settings"]
            batches = "length-sorted" if settings.get("length_sorted") else "random"
            tuned = f", tuned on {settings['pairs']:,} pairs, {batches} batches ({result['tuning_seconds']:,.0f} s)"
        for label, row in result["rows"].items():
            cold = row["slices"].get("cold")
            cold_cell = "-" if cold is None else f"{cold['NDCG@10']:.4f} ({cold['users']:,.0f})"
            lines.append(
                f"| {result['dataset']} | {result['items']:,} | {label}{tuned} | {row['valid']['NDCG@10']:.4f} | "
                f"{row['test']['NDCG@10']:.4f} | {row['slices']['tail']['NDCG@10']:.4f} | {cold_cell} | "
                f"{'yes' if label == result['picked_on_validation'] else ''} |"
            )
    return "\n".join(lines)


BLEND_ROWS = {
    "teacher": "teacher",
    "text_only_stock": "text only, the teacher's encoder (centring picked on validation)",
    "text_only": "text only (centring picked on validation)",
    "blend_free": "teacher + text, weight by validation NDCG@10",
    "blend": "teacher + text, weight by validation NDCG@10 over the text's tail",
    "blend_cold_fallback": "the last + cold-start fallback",
    "blend_drift": "teacher + text, the tail floor over validation weighted to the test's expected popularity mix",
}


def blend_baseline(result: dict, tag: str) -> tuple[str, float] | None:
    """The best tuned baseline on validation (name, test NDCG@10) of a `benchmarks/text_blend.py` result, None
    when the baselines did not run. A teacher of a share of the users is compared with baselines tuned on the
    same share, kept under the result's tag."""
    data = result["dataset"] if result["user_fraction"] == 1.0 else tag
    baselines = RESULTS / "baselines" / data / "metrics.json"
    if not baselines.exists():
        return None
    rows = stage_rows(baselines)
    name = max(rows, key=lambda k: rows[k]["valid"]["NDCG@10"])
    return name, rows[name]["test"]["NDCG@10"]


def text_blend_seeds_table(paths: list[Path]) -> str:
    """`benchmarks/text_blend.py` files of one command over teachers trained with different seeds: each row's test
    NDCG@10 as the mean over seeds with its 95% t-interval and each seed's value, the mean tail, the weights
    picked, and the mean against the best tuned baseline on validation (one run)."""
    results = sorted((json.loads(p.read_text()) for p in paths), key=lambda r: r["teacher_seed"])
    best = blend_baseline(results[0], paths[0].stem)
    versus = f"x {best[0]} ({best[1]:.4f})" if best else "x best baseline"
    seeds = ", ".join(str(r["teacher_seed"]) for r in results)
    lines = [
        f"| model (teacher seeds {seeds}) | test NDCG@10, mean [95% CI] | per seed | tail, mean | setting | {versus} |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for key, label in BLEND_ROWS.items():
        rows = [r["rows"][key] for r in results if key in r["rows"]]
        if len(rows) != len(results):
            continue
        tests = [row["test"]["NDCG@10"] for row in rows]
        summary = seed_summary(tests)
        tail = sum(row["slices"]["tail"]["NDCG@10"] for row in rows) / len(rows)
        settings = ""
        for name, shown in (("weight", "w ="), ("shift", "shift")):
            if name in rows[0]:
                settings = f"{shown} " + ", ".join(str(row[name]) for row in rows)
        ratio = f"{summary['mean'] / best[1]:.3f}x" if best else "-"
        lines.append(
            f"| {label} | {summary['mean']:.4f} [{summary['ci_low']:.4f}, {summary['ci_high']:.4f}] | "
            f"{', '.join(f'{t:.4f}' for t in tests)} | {tail:.4f} | {settings} | {ratio} |"
        )
    return f"`{results[0]['command']}` (each seed's teacher)\n\n" + "\n".join(lines)


def _paired_cell(paired: dict | None) -> str:
    """A paired test's mean difference and t-test p-value, or nothing."""
    return f"{paired['mean_diff']:+.4f} (p={paired['t_pvalue']:.2g})" if paired else ""


def text_blend_table(path: Path) -> str:
    """A `benchmarks/text_blend.py` file: each row's picked setting, validation and test NDCG@10, its test slices,
    and the test NDCG@10 against the dataset's best tuned baseline on validation (when the baselines ran; for a
    share of the users, `baselines/<tag>/`)."""
    result = json.loads(path.read_text())
    best = blend_baseline(result, path.stem)
    versus = f"x {best[0]} ({best[1]:.4f})" if best else "x best baseline"
    baseline = result.get("baseline")  # `--baseline`: every row paired against that saved baseline too
    baseline_head = f" vs {baseline['name']} (p) |" if baseline else ""
    lines = [
        f"| model | setting | valid NDCG@10 | test NDCG@10 | vs teacher (p) |{baseline_head} head | tail | cold (users) | "
        f"{versus} |",
        "|---|---|---:|---:|---:|" + ("---:|" if baseline else "") + "---:|---:|---:|---:|",
    ]
    tuned = result.get("encoder_tuning_pairs")  # the text side read by an encoder tuned on that many pairs
    for key, label in BLEND_ROWS.items():
        if key not in result["rows"]:
            continue
        if tuned and key == "text_only":
            label = f"text only, encoder tuned on {tuned:,} pairs (centring picked on validation)"
        row = result["rows"][key]
        setting = (
            f"w = {row['weight']}" if "weight" in row else f"shift {row['shift']}" if "shift" in row else ""
        )
        slices = row["slices"]
        cold = slices.get("cold")
        cold_cell = "-" if cold is None else f"{cold['NDCG@10']:.4f} ({cold['users']:,.0f})"
        test = row["test"]["NDCG@10"]
        ratio = f"{test / best[1]:.3f}x" if best else "-"  # three decimals: the goal is 1.15x
        versus_cells = [_paired_cell(row.get("vs_teacher"))] + (
            [_paired_cell(row.get("vs_baseline"))] if baseline else []
        )
        lines.append(
            f"| {label} | {setting} | {row['valid']['NDCG@10']:.4f} | {test:.4f} | {' | '.join(versus_cells)} | "
            f"{slices['head']['NDCG@10']:.4f} | {slices['tail']['NDCG@10']:.4f} | {cold_cell} | {ratio} |"
        )
    return f"`{result['command']}`\n\n" + "\n".join(lines)


def text_blend_drift_table(paths: list[Path]) -> str:
    """`benchmarks/text_blend.py` files with a `blend_drift` row, one line each: the tail floor's pick over plain
    validation means and over drift-weighted ones (`evaluate/drift.py`), each with its test NDCG@10 and tail, the
    difference of the two (paired over the test users, where the file has it), and the text-only tail. First
    column: the file's tag (its name without `-seed<N>`)."""
    lines = [
        "| tag | teacher seed | text-only tail | floor: w | test | tail | drift-weighted: w | test | tail | "
        "drift - floor (p) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path in paths:
        result = json.loads(path.read_text())
        rows = result["rows"]
        if "blend_drift" not in rows:
            continue
        floor, drift = rows["blend"], rows["blend_drift"]
        paired = drift.get("vs_blend")
        diff = drift["test"]["NDCG@10"] - floor["test"]["NDCG@10"]
        diff_cell = _paired_cell(paired) if paired else f"{diff:+.4f}"
        cells = [
            f"{row['weight']} | {row['test']['NDCG@10']:.4f} | {row['slices']['tail']['NDCG@10']:.4f}"
            for row in (floor, drift)
        ]
        tag = seed_group(path.stem)
        lines.append(
            f"| {tag} | {result['teacher_seed']} | {rows['text_only']['slices']['tail']['NDCG@10']:.4f} | "
            f"{' | '.join(cells)} | {diff_cell} |"
        )
    return "\n".join(lines)


def tail_weight_table(path: Path) -> str:
    """`benchmarks/tail_weight.py`'s file: two grids over (w_head rows, w_tail columns), NDCG@10 overall and on the
    tail, each cell validation / test, the validation pick (with the tail floor) in bold."""
    result = json.loads(path.read_text())
    cells = result["grid"]
    heads = sorted({c["w_head"] for c in cells.values()})
    tails = sorted({c["w_tail"] for c in cells.values()})
    out = [f"`{result['command']}`"]
    for metric, title in (("NDCG@10", "NDCG@10"), ("tail", "tail NDCG@10")):
        lines = [
            f"| {title}, valid / test: w_head \\ w_tail | " + " | ".join(f"{t:g}" for t in tails) + " |",
            "|---|" + "---:|" * len(tails),
        ]
        for h in heads:
            row = []
            for t in tails:
                key = f"{h}/{t}"
                cell = cells.get(key)
                text = f"{cell['valid'][metric]:.4f} / {cell['test'][metric]:.4f}" if cell else ""
                row.append(f"**{text}**" if key == result["picked_floor"] else text)
            lines.append(f"| {h:g} | " + " | ".join(row) + " |")
        out.append("\n".join(lines))
    picks = f"validation picks {result['picked_free']} without the floor and {result['picked_floor']} with it"
    note = f"(w_head/w_tail; {picks}; the text's validation tail: {result['text_tail_valid']:.4f})"
    return "\n\n".join([*out, note])


def target_drift_table(path: Path) -> str:
    """`benchmarks/target_drift.py`'s file: the share of validation and test targets on head, tail and cold items,
    and a target's median training count, per dataset."""
    result = json.loads(path.read_text())
    lines = [
        "| dataset | head share (valid -> test) | tail share | cold share | median training count of a target | "
        "tail share predicted |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, mix in result["datasets"].items():
        valid, test = mix["valid"], mix["test"]
        cells = [f"{valid[f'{g}_share']:.3f} -> {test[f'{g}_share']:.3f}" for g in ("head", "tail", "cold")]
        counts = f"{valid['median_train_count']:g} -> {test['median_train_count']:g}"
        predicted = mix.get("valid_drift_weighted")  # files written before the drift weights: no prediction
        predicted_cell = f"{predicted['tail_share']:.3f}" if predicted else "-"
        lines.append(f"| {name} | {' | '.join(cells)} | {counts} | {predicted_cell} |")
    return f"`{result['command']}`\n\n" + "\n".join(lines)


def softmax_ce_table(path: Path) -> str:
    lines = [
        "| dataset | positions x items (plain logits) | autocast | plain s | chunked s | speed-up |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in json.loads(path.read_text())["rows"]:
        lines.append(
            f"| {row['dataset']} | {row['positions']:,} x {row['n_items']:,} ({row['plain_logits_mb']} MB) | "
            f"{'bf16' if row['bf16'] else 'fp32'} | {row['plain_s']:.3f} | {row['chunked_s']:.3f} | "
            f"{row['speedup']:.2f}x |"
        )
    return "\n".join(lines)


def kd_step_table(folder: Path) -> str:
    lines = [
        "| dataset | KD method | full scores s | columns s | speed-up | columns, soft's own LSE s | sharing CE's LSE |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for path in sorted(folder.glob("*.json")):
        for row in json.loads(path.read_text())["rows"]:
            own = f"{row['own_lse_s']:.3f} | {row['share_speedup']:.2f}x" if "own_lse_s" in row else "- | -"
            lines.append(
                f"| {row['dataset']}{' (always gathered)' if row.get('gather_cost') == 0 else ''} | "
                f"{row['method']} | {row['full_scores_s']:.3f} | {row['columns_s']:.3f} | "
                f"{row['speedup']:.2f}x | {own} |"
            )
    return "\n".join(lines)


def histories(runs: list[str]) -> dict[str, list[dict]]:
    """{label: per-epoch history} of `LABEL=FILE:KEY` runs: the `history` of the entry at KEY of the results
    file FILE (relative to benchmarks/results/). KEY is a dotted path: `teacher` or `sasrec` in a
    `metrics.json`, `param_init.student_kd.per_seed.0` (seed 0's run) in a `benchmarks/distill.py` results
    file."""
    found = {}
    for run in runs:
        label, sep, rest = run.partition("=")
        file, sep2, key = rest.rpartition(":")
        if not (sep and sep2 and label and key):
            raise SystemExit(f"curves: expected LABEL=FILE:KEY, got {run!r}")
        entry = json.loads((RESULTS / file).read_text())
        for part in key.split("."):
            if isinstance(entry, list) and part.isdigit() and int(part) < len(entry):
                entry = entry[int(part)]
            else:
                entry = entry.get(part, {}) if isinstance(entry, dict) else {}
        if not isinstance(entry, dict) or not entry.get("history"):
            raise SystemExit(f"curves: {file} has no entry {key!r} with a history")
        found[label] = entry["history"]
    return found


def curves_png(runs: list[str]) -> bytes:
    """The runs' validation curves as a PNG (`histories` for the run syntax)."""
    from distillrec.report.plots import model_colours, training_curves

    curves = histories(runs)
    return training_curves(curves, model_colours(list(curves)))


def curves_table(runs: list[str], epochs: list[int]) -> str:
    """Validation NDCG@10 of each run (a column) at the given epochs (rows); '-' where a run has none."""
    curves = {
        label: {row["epoch"]: row.get("valid_ndcg10") for row in history}
        for label, history in histories(runs).items()
    }
    lines = ["| epoch | " + " | ".join(curves) + " |", "|---:|" + "---:|" * len(curves)]
    for epoch in epochs:
        cells = [f"{c[epoch]:.4f}" if c.get(epoch) is not None else "-" for c in curves.values()]
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _commands(result: dict) -> str:
    """The command(s) that made a result file: `commands` where later runs added rows, else `command`."""
    return "; ".join(f"`{c}`" for c in result.get("commands", [result.get("command")]))


def compress_table(path: Path) -> str:
    """Teacher, students and compressed copies (`benchmarks/compress.py`): quality, size, speed side by side."""
    result = json.loads(path.read_text())
    rows = result["models"]
    teacher_ms = rows["teacher"]["latency_ms_p50"]
    lines = [
        _commands(result) + f" ({result['dataset']}, one thread)",
        "",
        "| model | NDCG@10 | HR@10 | weights on disk | smaller than float | params | top-10 latency p50 / p99 | "
        "vs teacher | users/s (batch) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        base = "teacher" if name.startswith("teacher") else name.split(" ")[0] + " (KD)"
        ratio = rows[base]["weights_bytes"] / row["weights_bytes"]
        lines.append(
            f"| {name} | {row['NDCG@10']:.4f} | {row['HR@10']:.4f} | {row['weights_bytes'] / 1024:,.0f} KiB | "
            f"{ratio:.2f}x | {row['params']:,} | {row['latency_ms_p50']:.2f} / {row['latency_ms_p99']:.2f} ms | "
            f"{teacher_ms / row['latency_ms_p50']:.1f}x | {row['users_per_second']:,.0f} |"
        )
    return "\n".join(lines)


def serve_table(path: Path) -> str:
    """`distillrec serve` under mixed load, and durability across SIGKILL (`benchmarks/serve.py`)."""
    result = json.loads(path.read_text())
    lines = [
        f"`{result['command']}` ({result['dataset']}: {result['users']:,} users, {result['items']:,} items, "
        f"{result['model']} with {result['params']:,} parameters; server and load generator on the same "
        f"{result['cores']} cores)",
        "",
        "| offered requests/s | answered/s | errors | /recommend p50 / p99 | /feedback p50 / p99 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["rates"]:
        errors = sum(row["errors"].values())
        rec, fb = row["recommend"], row["feedback"]
        lines.append(
            f"| {row['rate']:.0f} | {row['achieved_per_second']:.0f} | {errors} | "
            f"{rec['p50_ms']:.1f} / {rec['p99_ms']:.1f} ms | {fb['p50_ms']:.1f} / {fb['p99_ms']:.1f} ms |"
        )
    d = result["durability"]
    lines += [
        "",
        f"Durability: {d['acknowledged']:,} feedback events acknowledged at {d['rate']:.0f}/s, the server killed "
        f"with SIGKILL after {d['killed_after_s']:.0f} s and restarted: **{d['missing']} missing**, "
        f"{d['stored_unacknowledged']} stored without an acknowledgement.",
    ]
    return "\n".join(lines)


def new_items_table(path: Path) -> str:
    """Held-out items placed by their text, against their learned vectors (`benchmarks/new_items.py`)."""
    result = json.loads(path.read_text())
    lines = [
        f"`{result['command']}` ({result['student']} of {result['run']}: {result['users']:,} test users, "
        f"{result['tail_users']:,} of them with a target outside the 20% most popular items)",
        "",
        "| the target item's vector | HR@10 | NDCG@10 | median rank | tail HR@10 | tail median rank |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["rows"].items():
        every, tail = row["all"], row["tail"]
        lines.append(
            f"| {name} | {every['HR@10']:.4f} | {every['NDCG@10']:.4f} | {every['median_rank']:.0f} | "
            f"{tail['HR@10']:.4f} | {tail['median_rank']:.0f} |"
        )
    return "\n".join(lines)


def cold_served_table(path: Path) -> str:
    """A served student's cold items posted by their text (`benchmarks/cold_items_served.py`)."""
    result = json.loads(path.read_text())
    lines = [
        f"`{result['command']}` ({result['dataset']}: {result['cold_items']:,} cold items, {result['cold_users']:,} "
        f"of {result['users']:,} test users with a cold target; student {result['student']['name']} of width "
        f"{result['student'].get('dim')}, best epoch {result['best_epoch']})",
        "",
        "| model | cold HR@10 | cold NDCG@10 | cold median rank | all users NDCG@10 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in result["cold"].items():
        every = result["all_users"].get(name, {}).get("NDCG@10")
        lines.append(
            f"| {name} | {row['HR@10']:.4f} | {row['NDCG@10']:.4f} | {row['median_rank']:.0f} | "
            f"{'' if every is None else f'{every:.4f}'} |"
        )
    return "\n".join(lines)


def finetune_table(path: Path) -> str:
    """Compressed copies of a run's KD student with and without KD fine-tuning (`compress:` of a run config)."""
    result = json.loads(path.read_text())
    rows = result["models"]
    (source,) = [n for n, r in rows.items() if r["kind"] == "student_kd"]
    base = rows[source]["test"]["NDCG@10"]
    lines = [
        f"`{result['command']}` ({result['dataset']}, run {result['run']}, one seed)",
        "",
        "| model | NDCG@10 | vs float | HR@10 | weights on disk | smaller than float |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        ndcg = row["test"]["NDCG@10"]
        lines.append(
            f"| {name} | {ndcg:.4f} | {100 * (ndcg / base - 1):+.1f}% | {row['test']['HR@10']:.4f} | "
            f"{row['weights_bytes'] / 1024:,.0f} KiB | {rows[source]['weights_bytes'] / row['weights_bytes']:.2f}x |"
        )
    return "\n".join(lines)


def finetune_aware_table(aware: Path, plain: Path) -> str:
    """Each compressed copy without fine-tuning, fine-tuned in float32 then compressed again, and fine-tuned
    compression-aware (`compress_finetune.py` on two runs, `compress.kd_finetune_aware` on and off)."""
    runs = [json.loads(path.read_text()) for path in (aware, plain)]
    rows = [r["models"] for r in runs]
    (source,) = [n for n, r in rows[0].items() if r["kind"] == "student_kd"]
    base = rows[0][source]["test"]["NDCG@10"]

    def cell(row: dict) -> str:
        ndcg = row["test"]["NDCG@10"]
        return f"{ndcg:.4f} ({100 * (ndcg / base - 1):+.1f}%), valid {row['valid']['NDCG@10']:.4f}"

    lines = [
        f"`{runs[0]['command']}` (aware) and `{runs[1]['command']}` (float32); {runs[0]['dataset']}, runs "
        f"{runs[0]['run']} and {runs[1]['run']}, one seed; the float student: test NDCG@10 {base:.4f}, "
        f"valid {rows[0][source]['valid']['NDCG@10']:.4f}",
        "",
        "| method | smaller than float | compressed | + fine-tune in float32 | + fine-tune, compression-aware |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows[0].items():
        tuned = name + " + fine-tune"
        if row["kind"] != "compressed" or name.endswith(" + fine-tune") or tuned not in rows[1]:
            continue
        aware_cell = cell(rows[0][tuned]) if rows[0][tuned].get("aware") else "-"
        lines.append(
            f"| {','.join(row['methods']) if 'methods' in row else name} | "
            f"{rows[0][source]['weights_bytes'] / rows[0][tuned]['weights_bytes']:.2f}x | {cell(row)} | "
            f"{cell(rows[1][tuned])} | {aware_cell} |"
        )
    return "\n".join(lines)


def teacher_variants_table(path: Path) -> str:
    """Teacher variants of one config, each a run (`benchmarks/teacher_variants.py`)."""
    result = json.loads(path.read_text())
    lines = [
        f"`{result['command']}`",
        "",
        "| teacher | test NDCG@10 | valid NDCG@10 | tail NDCG@10 (text-only) | student + KD | student alone | KD gain |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in result["variants"].items():
        kd, plain = row["student_kd"]["test"], row["student_plain"]["test"]
        lines.append(
            f"| {label} | {row['teacher']['test']:.4f} | {row['teacher']['valid']:.4f} | "
            f"{row['teacher_tail']:.4f} ({row['text_only_tail']:.4f}) | {kd:.4f} | {plain:.4f} | "
            f"{100 * (kd / plain - 1):+.1f}% |"
        )
    return "\n".join(lines)


def sampled_softmax_table(path: Path) -> str:
    """The SASRec baseline with the full softmax and with sampled ones (`benchmarks/sampled_softmax.py`)."""
    result = json.loads(path.read_text())
    lines = [
        f"`{result['command']}` ({result['n_items']:,} items; {result['cpu']}, {result['threads']} threads)",
        "",
        "| softmax | test NDCG@10 (mean, 95% CI over seeds) | vs full (per-user diff, paired t p) | "
        "s/epoch | best epoch |",
        "|---|---:|---:|---:|---:|",
    ]
    for negatives, row in result["rows"].items():
        summary, versus = row["test_ndcg10"], row["vs_full"]
        ci = "" if summary["ci_low"] is None else f" ({summary['ci_low']:.4f} .. {summary['ci_high']:.4f})"
        diff = "-" if versus is None else f"{versus['mean_diff']:+.4f} (p={versus['t_pvalue']:.2g})"
        label = "full" if negatives == "0" else f"sampled, {negatives} negatives"
        lines.append(
            f"| {label} | {summary['mean']:.4f}{ci} | {diff} | {row['epoch_seconds']:.2f} | "
            f"{row['best_epoch']:.0f} |"
        )
    return "\n".join(lines)


def ddp_epochs_table(path: Path) -> str:
    """Seconds per epoch in each setting (`benchmarks/ddp_epochs.py`): 1 process against 2, or the CPU against a
    GPU."""
    result = json.loads(path.read_text())
    labels = [k for k in next(iter(result["rows"].values())) if k != "speedup"]
    lines = [
        f"`{result['command']}` ({result['cpu']}, {result['cores']} cores; seconds per epoch with validation, "
        "training steps alone in brackets)",
        "",
        "| model | " + " | ".join(labels) + " | training speed-up |",
        "|---|" + "---:|" * (len(labels) + 1),
    ]
    for name, row in result["rows"].items():
        cells = [f"{row[k]['seconds']:.1f} ({row[k]['train_seconds']:.1f})" for k in labels]
        speedups = ", ".join(f"{k}: {v:.2f}x" for k, v in row["speedup"].items())
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {speedups} |")
    return "\n".join(lines)


def scale_table(path: Path) -> str:
    """Seconds and peak RSS of each step against data size (`benchmarks/scale.py`)."""
    result = json.loads(path.read_text())
    steps = result["steps"]
    sizes = list(dict.fromkeys(key.split("/")[0] for key in steps))
    names = list(dict.fromkeys(key.split("/")[1] for key in steps))
    lines = [
        "; ".join(f"`{c}`" for c in result["commands"])
        + f" ({result['cores']} cores; seconds / peak RSS in MB)",
        "",
        "| step | " + " | ".join(sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for name in names:
        cells = []
        for size in sizes:
            row = steps.get(f"{size}/{name}")
            cells.append("-" if row is None else f"{row['seconds']:.1f} s / {row['peak_rss_mb']:,.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def transfer_table(path: Path) -> str:
    """A source teacher carried to a target by text, per target data fraction (`benchmarks/transfer.py`)."""
    result = json.loads(path.read_text())
    source = result["source_teacher"]
    own = any("teacher_target" in row for row in result["fractions"].values())  # `--target-teacher`
    init = any("source_init" in row for row in result["fractions"].values())  # `transfer_init.py`
    lines = [
        _commands(result) + f" (source: the teacher of {source['dataset']['name']}, test NDCG@10 "
        f"{source['test_ndcg10']:.4f} there; KD {result['kd']})",
        "",
        "| target users | text match (median cosine; >= 0.9) | teacher, zero-shot | student alone | "
        "student + transfer KD | KD - alone (95% CI, p) | tail: alone / KD | cold: alone / KD (users) |"
        + (" target-only teacher | student + its KD |" if own else "")
        + (" student from the source student (vs alone, p) |" if init else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|"
        + ("---:|---:|" if own else "")
        + ("---:|" if init else ""),
    ]
    for fraction, row in result["fractions"].items():
        kd, plain, diff = row["student_kd"], row["student_plain"], row["kd_vs_plain"]
        tail = "-" if row["tail_kd"] is None else f"{row['tail_plain']:.4f} / {row['tail_kd']:.4f}"
        cold = "-"  # not kept (a row from before the cold slice), or no user with a cold target
        if row.get("cold_kd") is not None:
            cold = f"{row['cold_plain']:.4f} / {row['cold_kd']:.4f} ({row['cold_users']:,})"
        target = ""
        if own:
            target = " - | - |"
            if "teacher_target" in row:
                mean = row["student_kd_target"]["mean"]
                target = (
                    f" {row['teacher_target']:.4f} | {mean:.4f} ({100 * (mean / plain['mean'] - 1):+.1f}%) |"
                )
        lines.append(
            f"| {float(fraction):.0%} ({row['users']:,}) | {row['mapping']['median_cosine']:.3f}; "
            f"{row['mapping']['share_at_least_0.9']:.0%} | {row['teacher_zero_shot']:.4f} | {plain['mean']:.4f} | "
            f"{kd['mean']:.4f} ({100 * (kd['mean'] / plain['mean'] - 1):+.1f}%) | {diff['mean_diff']:+.4f} "
            f"({diff['diff_ci_low']:+.4f} .. {diff['diff_ci_high']:+.4f}, p={diff['t_pvalue']:.2g}) | {tail} | {cold} |"
            + target
            + (_source_init_cell(row, plain["mean"]) if init else "")
        )
    if init:
        lines += ["", f"Student from the source student: `{result['source_init_command']}`."]
    return "\n".join(lines)


def _source_init_cell(row: dict, plain: float) -> str:
    if "source_init" not in row:
        return " - |"
    mean, test = row["source_init"]["mean"], row["source_init_vs_plain"]
    return f" {mean:.4f} ({100 * (mean / plain - 1):+.1f}%, p={test['t_pvalue']:.2g}) |"


def multitask_table(path: Path) -> str:
    """The teacher and each student variant of `benchmarks/multitask.py`: every task's test AUC (mean over seeds,
    95% interval), conversion NDCG@10, and paired tests over users against the student alone."""
    result = json.loads(path.read_text())
    seeds = len(result["seeds"])
    train = result["impressions"]["train"]
    lines = [
        f"`{result['command']}` ({seeds} seeds; {train['impressions']:,} training impressions, "
        f"{train['clicks']:,} clicks, {train['conversions']:,} conversions)",
        "",
        "| model | params | CTR AUC | CVR AUC | CTCVR AUC | CTCVR GAUC | conversion NDCG@10 | "
        "vs alone: conv. NDCG@10, CVR AUC, CTR AUC (per-user diff, p) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]

    def cell(row: dict, metric: str) -> str:
        summary = row[metric]
        if summary["ci_low"] is None:
            return f"{summary['mean']:.4f}"
        return f"{summary['mean']:.4f} ± {(summary['ci_high'] - summary['ci_low']) / 2:.4f}"

    for name, row in [("teacher", result["teacher"]), *result["students"].items()]:
        test = result["comparisons"].get(f"{name} vs alone")
        versus = "-"
        if test:
            versus = ", ".join(
                f"{test[m]['mean_diff']:+.4f} (p={test[m]['t_pvalue']:.2g})"
                for m in ("conversion_NDCG@10", "cvr_AUC", "ctr_AUC")
            )
        metrics = ("ctr_AUC", "cvr_AUC", "ctcvr_AUC", "ctcvr_GAUC", "conversion_NDCG@10")
        label = name if name == "teacher" else f"{name} ({', '.join(result['kd_terms'][name]) or 'no KD'})"
        lines.append(
            f"| {label} | {row['params']:,} | " + " | ".join(cell(row, m) for m in metrics) + f" | {versus} |"
        )
    singles = [key for key in result["comparisons"] if " vs kd-c" in key]
    if singles:
        lines += [
            "",
            "| multi-task vs single-task KD | CTR AUC | CVR AUC | CTCVR AUC | conversion NDCG@10 |",
            "|---|---:|---:|---:|---:|",
        ]
        for key in singles:
            test = result["comparisons"][key]
            lines.append(
                f"| {key} | "
                + " | ".join(
                    f"{test[m]['mean_diff']:+.4f} (p={test[m]['t_pvalue']:.2g})"
                    for m in ("ctr_AUC", "cvr_AUC", "ctcvr_AUC", "conversion_NDCG@10")
                )
                + " |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "what",
        choices=[
            "summary",
            "baselines",
            "distill",
            "teacher",
            "softmax-ce",
            "kd-step",
            "curves",
            "compress",
            "serve",
            "new-items",
            "cold-served",
            "finetune",
            "finetune-aware",
            "teacher-variants",
            "sampled-softmax",
            "ddp-epochs",
            "scale",
            "transfer",
            "multitask",
            "width",
            "text-only",
            "text-blend",
            "text-blend-drift",
            "target-drift",
            "tail-weight",
        ],
    )
    parser.add_argument(
        "runs",
        nargs="*",
        help="curves: LABEL=FILE:KEY, FILE relative to benchmarks/results/; distill: DATASET/TAG files to put in "
        "one table (default: a table of every file per dataset)",
    )
    parser.add_argument("--out", type=Path, help="curves: the PNG to write")
    parser.add_argument(
        "--epochs", help="curves: print validation NDCG@10 at these epochs (e.g. 10,20,30) as a table"
    )
    args = parser.parse_intermixed_args()
    if args.what == "curves":
        if not args.runs or (args.out is None and args.epochs is None):
            parser.error("curves needs --out or --epochs, and at least one LABEL=FILE:KEY")
        if args.epochs:
            print(curves_table(args.runs, [int(e) for e in args.epochs.split(",")]))
        if args.out:
            args.out.write_bytes(curves_png(args.runs))
            print(f"wrote {args.out}")
    if args.what == "compress":
        for path in sorted((RESULTS / "compress").glob("*.json")):
            print(f"### {path.stem}\n\n{compress_table(path)}\n")
    if args.what == "serve":
        for path in sorted((RESULTS / "serve").glob("*.json")):
            print(f"### {path.stem}\n\n{serve_table(path)}\n")
    if args.what == "new-items":
        for path in sorted((RESULTS / "new_items").glob("*.json")):
            print(f"### {path.stem}\n\n{new_items_table(path)}\n")
    if args.what == "cold-served":
        for path in sorted((RESULTS / "cold_served").glob("*.json")):
            print(f"### {path.stem}\n\n{cold_served_table(path)}\n")
    if args.what == "finetune":
        for path in sorted((RESULTS / "compress_finetune").glob("*.json")):
            print(f"### {path.stem}\n\n{finetune_table(path)}\n")
    if args.what == "finetune-aware":  # pairs <tag>-aware.json with <tag>-float.json
        for path in sorted((RESULTS / "compress_finetune").glob("*-aware.json")):
            tag = path.name.removesuffix("-aware.json")
            print(f"### {tag}\n\n{finetune_aware_table(path, path.with_name(tag + '-float.json'))}\n")
    if args.what == "teacher-variants":
        for path in sorted((RESULTS / "teacher_variants").glob("*.json")):
            print(f"### {path.stem}\n\n{teacher_variants_table(path)}\n")
    for what, folder, table in (
        ("sampled-softmax", "sampled_softmax", sampled_softmax_table),
        ("ddp-epochs", "ddp_epochs", ddp_epochs_table),
        ("scale", "scale", scale_table),
        ("transfer", "transfer", transfer_table),
        ("multitask", "multitask", multitask_table),
        ("text-blend", "text_blend", text_blend_table),
        ("tail-weight", "tail_weight", tail_weight_table),
    ):
        if args.what == what:
            for path in sorted((RESULTS / folder).glob("*.json")):
                if not path.name.endswith(".partial.json"):
                    print(f"### {path.stem}\n\n{table(path)}\n")
    if args.what == "text-blend":  # <tag>-seed<N>.json and <tag>.json (seed 0): one command, several seeds
        folder = RESULTS / "text_blend"
        for tag in sorted({seed_group(p.stem) for p in folder.glob("*-seed*.json")}):
            base = [folder / f"{tag}.json"] if (folder / f"{tag}.json").exists() else []
            group = base + sorted(folder.glob(f"{tag}-seed*.json"))
            if len(group) > 1:
                print(f"### {tag}, {len(group)} teacher seeds\n\n{text_blend_seeds_table(group)}\n")
    if args.what == "text-blend-drift":
        order = {name: i for i, name in enumerate(DATASETS)}
        paths = sorted(
            (RESULTS / "text_blend").glob("*.json"),
            key=lambda p: (order.get(json.loads(p.read_text())["dataset"], 99), p.stem),
        )
        print(text_blend_drift_table(paths))
    if args.what == "text-only":
        order = {
            name: i for i, name in enumerate(DATASETS)
        }  # the datasets in the document's order, then others
        paths = sorted(
            (RESULTS / "text_only").glob("*.json"),
            key=lambda p: (order.get(p.stem.split("-tuned-")[0], 99), p.stem),
        )
        print(text_only_table(paths))
    if args.what == "width":
        for dataset in DATASETS:
            if any((RESULTS / "distill" / dataset).glob(f"{WIDTH_PREFIX}*.json")):
                print(f"### {dataset}\n\n{width_table(dataset)}\n")
    if args.what == "summary":
        print(f"### KD gains: test NDCG@10 of the student with KD vs without\n\n{gains_table()}\n")
        print(f"### Size and quality\n\n{size_quality_table()}")
    if args.what == "baselines":
        for folder in sorted((RESULTS / "baselines").iterdir()):
            if (folder / "metrics.json").exists():
                print(f"### {folder.name}\n\n{baselines_table(folder.name)}\n")
    if args.what == "teacher":
        for folder in sorted((RESULTS / "teacher").iterdir()):
            if (folder / "metrics.json").exists():
                print(f"### {folder.name}\n\n{teacher_table(folder)}\n")
    if args.what == "target-drift":
        print(target_drift_table(RESULTS / "target_drift.json"))
    if args.what == "softmax-ce":
        print(softmax_ce_table(RESULTS / "softmax_ce.json"))
    if args.what == "kd-step":
        print(kd_step_table(RESULTS / "kd_step"))
    if args.what == "distill" and args.runs:
        print(distill_table([RESULTS / "distill" / f"{run}.json" for run in args.runs]))
    elif args.what == "distill":
        for folder in sorted((RESULTS / "distill").iterdir()):
            paths = sorted(folder.glob("*.json"), key=lambda path: path.stem)
            print(f"### {folder.name}\n\n{distill_table(paths)}\n")


if __name__ == "__main__":
    main()
