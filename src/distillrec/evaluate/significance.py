"""Is model A better than model B? Paired tests, bootstrap intervals and seed summaries over per-user metrics.

Input: per-user metric arrays (`Evaluation.per_user["NDCG@10"]`), paired by user (same users, same order), or
one value per seed. Output: plain dicts/dataclasses of floats, ready for `metrics.json`.

- `paired_test(a, b)`: paired t-test (`scipy.stats.ttest_rel`, two-sided, on d = a - b) and Wilcoxon
  signed-rank test (`scipy.stats.wilcoxon`, two-sided, zero differences dropped, as Wilcoxon's original
  procedure; users where both models score 0 are common and carry no information about the sign). The t-test
  asks about the mean, which is what NDCG@10 reports; the Wilcoxon test does not assume normal differences
  (per-user NDCG is far from normal: mostly zeros). When every difference is zero both p-values are 1.
- `bootstrap_ci(x)`: percentile bootstrap of the mean (Efron & Tibshirani 1993): resample the n values with
  replacement `n_resamples` times, take the alpha/2 and 1 - alpha/2 quantiles of the resampled means.
  `bootstrap_diff_ci(a, b)` is the same on the paired differences (users resampled, pairs kept together).
- `seed_summary(values)`: mean, sample standard deviation and Student-t interval of the mean over seeds,
  mean +- t_{1 - alpha/2, n - 1} s / sqrt(n) (no interval for a single seed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = ["PairedTest", "paired_test", "bootstrap_ci", "bootstrap_diff_ci", "seed_summary"]


@dataclass(frozen=True)
class PairedTest:
    n: int  # number of pairs
    mean_a: float
    mean_b: float
    mean_diff: float  # mean of a - b
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    n_nonzero: int  # pairs with a != b (the ones the Wilcoxon test uses)

    def to_json(self) -> dict:
        return asdict(self)


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired arrays must be 1-D of one length, got shapes {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a paired test needs at least 2 pairs, got {len(a)}")
    return a, b


def paired_test(a, b) -> PairedTest:
    """Two-sided paired t-test and Wilcoxon signed-rank test of a against b (see the module docstring)."""
    a, b = _paired(a, b)
    diff = a - b
    nonzero = int(np.count_nonzero(diff))
    if nonzero == 0:
        t_stat, t_p, w_stat, w_p = 0.0, 1.0, 0.0, 1.0
    else:
        t = stats.ttest_rel(a, b)
        t_stat, t_p = float(t.statistic), float(t.pvalue)
        if not np.isfinite(t_stat):  # constant non-zero difference: infinitely significant for the t-test
            t_p = 0.0
        w = stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
        w_stat, w_p = float(w.statistic), float(w.pvalue)
    return PairedTest(
        len(a), float(a.mean()), float(b.mean()), float(diff.mean()), t_stat, t_p, w_stat, w_p, nonzero
    )


def bootstrap_ci(
    values, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """(low, high) percentile-bootstrap interval of the mean of `values`."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty 1-D array, got shape {x.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, (1 << 22) // len(x))  # bounds the (chunk, n) index buffer
    for lo in range(0, n_resamples, chunk):
        hi = min(lo + chunk, n_resamples)
        means[lo:hi] = x[rng.integers(0, len(x), size=(hi - lo, len(x)))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_diff_ci(
    a, b, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """(low, high) percentile-bootstrap interval of mean(a - b), resampling pairs."""
    a, b = _paired(a, b)
    return bootstrap_ci(a - b, n_resamples, confidence, seed)


def seed_summary(values, confidence: float = 0.95) -> dict:
    """{"n", "mean", "std", "ci_low", "ci_high"} over seeds; std and the interval are None for one seed."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"seed_summary needs a non-empty 1-D array, got shape {x.shape}")
    out = {"n": len(x), "mean": float(x.mean()), "std": None, "ci_low": None, "ci_high": None}
    if len(x) > 1:
        std = float(x.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * std / np.sqrt(len(x))
        out.update(std=std, ci_low=out["mean"] - half, ci_high=out["mean"] + half)
    return out
