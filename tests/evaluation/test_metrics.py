"""Metric math against hand-computed cases."""

from __future__ import annotations

import pytest

from bot.domain import VerdictStatus
from bot.evaluation import ConfusionMatrix, Judgement, Label, RunMetrics, percentile


def test_confusion_matrix_counts_each_pair_once() -> None:
    pairs = [(True, True)] * 3 + [(False, True)] + [(True, False)] * 2 + [(False, False)] * 4
    m = ConfusionMatrix.of(pairs)
    assert (m.tp, m.fp, m.fn, m.tn) == (3, 1, 2, 4)
    assert m.total == 10


def test_precision_recall_f1_by_hand() -> None:
    m = ConfusionMatrix(tp=3, fp=1, fn=2, tn=4)
    assert m.precision == pytest.approx(3 / 4)
    assert m.recall == pytest.approx(3 / 5)
    # Harmonic mean of 0.75 and 0.6: 2 * 0.45 / 1.35.
    assert m.f1 == pytest.approx(2 / 3)
    assert m.accuracy == pytest.approx(7 / 10)


def test_published_style_f1_from_counts() -> None:
    # 829 of 1000 positives found with 171 false alarms: P = R = 0.829, so F1 = 0.829.
    m = ConfusionMatrix(tp=829, fp=171, fn=171, tn=0)
    assert m.f1 == pytest.approx(0.829)


def test_undefined_ratios_are_none_not_zero() -> None:
    nothing_flagged = ConfusionMatrix(tp=0, fp=0, fn=3, tn=5)
    assert nothing_flagged.precision is None
    assert nothing_flagged.recall == 0.0
    assert nothing_flagged.f1 == 0.0
    no_positives = ConfusionMatrix(tp=0, fp=2, fn=0, tn=5)
    assert no_positives.recall is None
    assert no_positives.precision == 0.0
    all_clean = ConfusionMatrix(tn=7)
    assert all_clean.f1 is None
    assert ConfusionMatrix().accuracy is None


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 50, 50),
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 95, 100),
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 90, 90),
        ([4, 1, 3, 2], 50, 2),  # unsorted input; rank ceil(0.5 * 4) = 2
        ([4, 1, 3, 2], 95, 4),
        ([7.5], 95, 7.5),
        (list(range(1, 21)), 95, 19),  # rank ceil(0.95 * 20) = 19
    ],
)
def test_nearest_rank_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_percentile_of_nothing_and_bad_q() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0)


def _j(id_: str, label: Label, violation: bool | None, latency: float, prompt: int, completion: int) -> Judgement:
    return Judgement(
        id=id_,
        label=label,
        status=VerdictStatus.DECIDED if violation is not None else VerdictStatus.NEEDS_REVIEW,
        violation=violation,
        latency_ms=latency,
        prompt_tokens=prompt,
        completion_tokens=completion,
    )


def test_run_metrics_keep_unusable_answers_out_of_the_matrix_but_in_the_costs() -> None:
    judgements = [
        _j("a", Label.VIOLATION, True, 100, 500, 100),  # TP
        _j("b", Label.SAFE, True, 300, 500, 200),  # FP
        _j("c", Label.VIOLATION, False, 200, 500, 50),  # FN
        _j("d", Label.SAFE, False, 400, 500, 150),  # TN
        _j("e", Label.VIOLATION, None, 1000, 1000, 500),  # unusable: two calls' worth
    ]
    m = RunMetrics.of(judgements)
    assert (m.matrix.tp, m.matrix.fp, m.matrix.fn, m.matrix.tn) == (1, 1, 1, 1)
    assert m.judged == 5
    assert m.undecided == 1
    assert m.latency_p50_ms == 300  # sorted 100 200 300 400 1000, rank 3
    assert m.latency_p95_ms == 1000
    assert m.tokens_per_decision == pytest.approx((600 + 700 + 550 + 650 + 1500) / 5)
    assert m.prompt_tokens_per_decision == pytest.approx(600)
    assert m.completion_tokens_per_decision == pytest.approx(200)
    assert m.to_json()["confusion_matrix"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
