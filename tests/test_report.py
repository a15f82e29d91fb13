"""The HTML report: table values equal metrics.json, clear errors, embedded PNG plots, Pareto front, rendering."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from distillrec.report.html import TABLE_METRICS, MetricsError, build_report, render_report
from distillrec.report.plots import pareto_front

TEACHER, KD, PLAIN = "LLM-ESR SASRec", "SASRec-64 KD", "SASRec-64 plain"
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _history(epochs: int, loss0: float, ndcg_end: float, every: int = 1) -> list[dict]:
    """A plausible curve: loss decays, validation NDCG rises towards `ndcg_end`, measured every `every` epochs."""
    return [
        {
            "epoch": e,
            "loss": round(loss0 * (0.8**e) + 0.3, 4),
            "valid_ndcg10": round(ndcg_end * (1 - 0.6**e), 4) if e % every == 0 else None,
            "seconds": 4.1,
        }
        for e in range(1, epochs + 1)
    ]


def _test(ndcg: float, hr: float, mrr: float, recall20: float) -> dict:
    return {
        "NDCG@10": ndcg,
        "HR@10": hr,
        "MRR": mrr,
        "Recall@20": recall20,
        "NDCG@20": ndcg * 1.2,
        "Coverage@10": 0.31,
    }


def sample_metrics() -> dict:
    """ml-100k, leave-one-out: 2 baselines, a text-only model, a teacher, KD and plain students over 3 seeds."""
    kd_seeds = [0.0781, 0.0802, 0.0769]
    plain_seeds = [0.0731, 0.0745, 0.0722]

    def student(kind: str, seeds: list[float], ndcg: float, mrr: float, kd: list[str] | None) -> dict:
        model = {
            "kind": kind,
            "test": _test(ndcg, 0.1521 if kd else 0.1432, mrr, 0.2390 if kd else 0.2288),
            "valid": _test(ndcg * 0.95, 0.14, mrr, 0.22),
            "params": 130_112,
            "train_seconds": 95.2,
            "seeds": [{"seed": s, "test": {"NDCG@10": v}} for s, v in enumerate(seeds)],
            "ci95": {"NDCG@10": [round(ndcg - 0.0041, 4), round(ndcg + 0.0041, 4)]},
            "slices": {
                "head": {"users": 702, "NDCG@10": ndcg * 1.2},
                "tail": {"users": 231, "NDCG@10": ndcg * 0.45},
                "cold": {"users": 10, "NDCG@10": 0.0 if kd is None else 0.012},
            },
            "history": _history(30, 6.0 if kd else 4.0, ndcg * 1.05, every=2),
        }
        if kd:
            model["kd"] = kd
        return model

    return {
        "dataset": {
            "name": "ml-100k",
            "users": 943,
            "items": 1682,
            "interactions": 100000,
            "split": "leave_one_out",
        },
        "models": {
            "ItemKNN": {
                "kind": "baseline",
                "test": _test(0.0693, 0.1357, 0.0590, 0.2100),
                "valid": _test(0.0726, 0.1410, 0.0610, 0.2200),
                "params": 16_780,
                "train_seconds": 1.97,
            },
            "iALS": {
                "kind": "baseline",
                "test": _test(0.0730, 0.1410, 0.0620, 0.2205),
                "valid": _test(0.0741, 0.1450, 0.0630, 0.2250),
                "params": 336_000,
                "train_seconds": 1.54,
                "slices": {
                    "head": {"users": 702, "NDCG@10": 0.0891},
                    "tail": {"users": 231, "NDCG@10": 0.0290},
                    "cold": {"users": 10, "NDCG@10": 0.0},
                },
            },
            "MiniLM text kNN": {
                "kind": "text_only",
                "test": _test(0.0210, 0.0450, 0.0190, 0.0780),
                "valid": _test(0.0220, 0.0460, 0.0200, 0.0800),
                "params": 645_888,
                "train_seconds": 12.4,
            },
            TEACHER: {
                "kind": "teacher",
                "test": _test(0.0855, 0.1654, 0.0712, 0.2531),
                "valid": _test(0.0870, 0.1690, 0.0730, 0.2600),
                "params": 1_245_312,
                "train_seconds": 812.5,
                "slices": {
                    "head": {"users": 702, "NDCG@10": 0.1001},
                    "tail": {"users": 231, "NDCG@10": 0.0452},
                    "cold": {"users": 10, "NDCG@10": 0.021},
                },
                "history": _history(40, 8.0, 0.089),
            },
            KD: student("student_kd", kd_seeds, 0.0784, 0.0725, ["soft", "rd"]),
            PLAIN: student("student_plain", plain_seeds, 0.0733, 0.0601, None),
        },
        "agreement": {KD: {"top10_overlap_with_teacher": 0.41}, PLAIN: {"top10_overlap_with_teacher": 0.27}},
        "comparison": {KD: {"vs": PLAIN, "p_value": 0.013, "diff_ci95": [0.0012, 0.0089]}},
    }


def _write(folder: Path, metrics: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return build_report(_write(tmp_path_factory.mktemp("run"), sample_metrics()))


class _TableCells(HTMLParser):
    """Rows of <table id="models"> body: each cell as (text chunks, whether it holds a <strong>)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[list[str], bool]]] = []
        self._in_table = self._in_body = False
        self._cell: tuple[list[str], list[bool]] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._in_table = dict(attrs).get("id") == "models"
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = ([], [False])
        elif self._cell is not None and tag == "strong":
            self._cell[1][0] = True

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append((self._cell[0], self._cell[1][0]))
            self._cell = None
        elif tag == "table":
            self._in_table = self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0].append(data)


def _rows(page: str) -> dict[str, list[tuple[list[str], bool]]]:
    parser = _TableCells()
    parser.feed(page)
    return {cells[0][0][0]: cells for cells in parser.rows}


def test_table_values_match_metrics_json(report):
    metrics = sample_metrics()
    page = report.read_text()
    rows = _rows(page)
    # Sorted by kind (baseline, text_only, teacher, student_kd, student_plain), then test NDCG@10 descending.
    assert list(rows) == ["iALS", "ItemKNN", "MiniLM text kNN", TEACHER, KD, PLAIN]
    for name, cells in rows.items():
        model = metrics["models"][name]
        assert "".join(cells[1][0]) == model["kind"]
        for col, metric in enumerate(TABLE_METRICS, start=2):
            assert "".join(cells[col][0]).startswith(f"{model['test'][metric]:.4f}"), (name, metric)
        assert "".join(cells[6][0]) == f"{model['params']:,}"
    # Hand-computed: 130,112 / 1,245,312 = 10.4% of the teacher; 812.5 s = 13.5 min; CI 0.0743..0.0825 = ± 0.0041.
    assert "".join(rows[KD][7][0]) == "10%" and "".join(rows[TEACHER][7][0]) == "100%"
    assert "".join(rows["ItemKNN"][7][0]) == "1.3%"
    assert "".join(rows[TEACHER][8][0]) == "13.5 min" and "".join(rows["iALS"][8][0]) == "1.5 s"
    assert "".join(rows[KD][2][0]) == "0.0784 ± 0.0041"
    assert "".join(rows[KD][0][0]) == f"{KD}KD: soft + rd, 3 seeds"
    assert '% of teacher<span class="detail">LLM-ESR SASRec</span>' in page


def test_best_value_of_each_metric_column_is_bold(report):
    rows = _rows(report.read_text())
    bold = {
        metric: [name for name, cells in rows.items() if cells[col][1]]
        for col, metric in enumerate(TABLE_METRICS, start=2)
    }
    # The teacher leads every column except MRR, where the KD student (0.0725) beats it (0.0712).
    assert bold == {"NDCG@10": [TEACHER], "HR@10": [TEACHER], "MRR": [KD], "Recall@20": [TEACHER]}


def test_header_names_dataset_split_protocol_and_version():
    created = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    metrics = sample_metrics()
    for model in metrics["models"].values():  # no plots needed here
        for key in ("history", "slices", "seeds"):
            model.pop(key, None)
    metrics.pop("agreement")
    page = render_report(metrics, created=created)
    for text in (
        "ml-100k: 943 users, 1,682 items, 100,000 interactions",
        "leave_one_out",
        "full ranking",
        "2025-03-04T05:06:07+00:00",
        "<dd>0.1.0</dd>",
    ):
        assert text in page


@pytest.mark.parametrize(
    ("path", "named"),
    [
        (("dataset", "split"), 'missing key "split" in "dataset"'),
        (("models", TEACHER, "params"), f'missing key "params" in models["{TEACHER}"]'),
        (("models", KD, "test", "Recall@20"), f'missing key "Recall@20" in models["{KD}"]["test"]'),
        (("models", PLAIN, "history", 3, "loss"), f'missing key "loss" in models["{PLAIN}"]["history"][3]'),
        (
            ("agreement", KD, "top10_overlap_with_teacher"),
            f'missing key "top10_overlap_with_teacher" in "agreement"["{KD}"]',
        ),
        (("models",), 'missing key "models" in metrics.json'),
    ],
)
def test_missing_key_error_names_it(tmp_path, path, named):
    metrics = sample_metrics()
    parent = metrics
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    run = _write(tmp_path, metrics)
    with pytest.raises(MetricsError) as info:
        build_report(run)
    assert named in str(info.value) and str(run / "metrics.json") in str(info.value)
    assert not (run / "report.html").exists()


def test_bad_values_are_named_with_the_valid_choices():
    metrics = sample_metrics()
    metrics["models"]["iALS"]["kind"] = "student"
    with pytest.raises(
        MetricsError,
        match='models\\["iALS"\\]\\["kind"\\] is .student.; valid kinds: baseline, '
        "text_only, teacher, student_kd, student_plain",
    ):
        render_report(metrics)
    metrics = sample_metrics()
    metrics["models"][KD]["test"]["MRR"] = "0.07"
    with pytest.raises(MetricsError, match=r'models\["SASRec-64 KD"\]\["test"\]\["MRR"\] must be a number'):
        render_report(metrics)
    metrics = sample_metrics()
    metrics["comparison"][KD]["vs"] = "SASRec-32 plain"
    with pytest.raises(MetricsError, match='names "SASRec-32 plain", which is not in "models"'):
        render_report(metrics)


def _pngs(page: str) -> list[Image.Image]:
    images = []
    for encoded in IMG.findall(page):
        data = base64.b64decode(encoded, validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        image = Image.open(io.BytesIO(data))
        image.verify()  # checks the chunks' CRCs
        images.append(Image.open(io.BytesIO(data)))
    return images


def test_plots_are_embedded_valid_pngs(report):
    page = report.read_text()
    images = _pngs(page)
    # Training curves, quality vs size, head/tail/cold, agreement, KD vs plain per seed.
    assert len(images) == 5 == page.count("<img ")
    assert all(image.format == "PNG" and image.width >= 400 and image.height >= 150 for image in images)
    assert "Skipped" not in page
    # Self-contained: nothing is fetched (no scripts, stylesheets or remote images).
    assert not re.search(r"<script|<link|src=\"(?!data:)|https?://", page)


def test_plots_without_their_data_become_notes():
    metrics = sample_metrics()
    for model in metrics["models"].values():
        model.pop("history", None)
        model.pop("slices", None)
    metrics.pop("agreement")
    page = render_report(metrics)
    assert len(_pngs(page)) == 2  # quality vs size, KD vs plain per seed
    for note in (
        "Skipped: no model has a training history.",
        "Skipped: no model has head/tail/cold slices.",
        "Skipped: metrics.json has no teacher agreement.",
    ):
        assert note in page


def test_text_from_metrics_json_is_escaped():
    metrics = sample_metrics()
    name = '<img src=x onerror="alert(1)"> & co'
    metrics["models"][name] = metrics["models"].pop("ItemKNN")
    metrics["dataset"]["name"] = "<b>ml</b>"
    for model in metrics["models"].values():
        for key in ("history", "slices", "seeds"):
            model.pop(key, None)
    metrics.pop("agreement")
    page = render_report(metrics)
    assert name not in page and "<b>ml</b>" not in page
    assert (
        "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co" in page and "&lt;b&gt;ml&lt;/b&gt;" in page
    )


def test_pareto_front_on_a_hand_example():
    #          A     B     C     D     E     F (duplicate of B)
    params = [10, 100, 1000, 500, 100, 100]
    quality = [0.02, 0.06, 0.09, 0.05, 0.04, 0.06]
    # D (500, 0.05) is dominated by B (100, 0.06); E by B; C is larger but better; A is smallest.
    # B and F are equal: neither strictly dominates the other, so both stay.
    assert pareto_front(params, quality) == [0, 1, 5, 2]
    assert pareto_front([5], [0.1]) == [0]
    assert pareto_front([1, 2, 3], [0.3, 0.2, 0.1]) == [0]  # the smallest is also the best: it alone
    with pytest.raises(ValueError, match="differ in length"):
        pareto_front([1, 2], [0.1])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None,
    reason="no chromium binary on PATH; install it with `apt-get install -y chromium` (Debian)",
)
def test_report_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            report.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2000)
    # A blank or error page has a handful of colours; text plus the embedded plots give thousands.
    assert len(image.getcolors(maxcolors=1 << 20)) > 500
    # The plots rendered: the lower half of the page (below the table) is not plain white either.
    lower = image.crop((0, 1000, 1200, 2000))
    assert len(lower.getcolors(maxcolors=1 << 20)) > 200


def test_the_share_of_the_teacher_is_against_the_trained_teacher_not_a_wrapper_of_it():
    from distillrec.report.html import _reference_teacher

    row = {"kind": "teacher", "params": 1_000, "test": {"NDCG@10": 0.08}}
    wrapper = {"kind": "teacher", "params": 2_000, "test": {"NDCG@10": 0.09}}  # the text table counted twice
    assert _reference_teacher({"teacher": row, "teacher_text_blend": wrapper}) == "teacher"
    assert _reference_teacher({"a": row, "b": wrapper}) == "b"  # no row named teacher: the best one
    assert _reference_teacher({"text": {"kind": "text_only", "params": 5, "test": {"NDCG@10": 0.1}}}) is None
