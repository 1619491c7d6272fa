"""Readable text for evaluation results and policy tests (the console prints these lines)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.evaluation.datasets import DatasetKind, Label
from bot.evaluation.evaluate import CaseOutcome, PolicyTestReport
from bot.evaluation.metrics import ConfusionMatrix
from bot.evaluation.results import EvaluationReport, RunMetrics
from bot.evaluation.runner import Judgement

# How many disagreeing row ids a comparison lists before "...".
SHOWN_DISAGREEMENTS = 20
SNIPPET_CHARS = 70


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _delta_pct(a: float | None, b: float | None) -> str:
    return "" if a is None or b is None else f"{100 * (b - a):+.1f} pts"


def _delta(a: float | None, b: float | None, digits: int = 1) -> str:
    return "" if a is None or b is None else f"{b - a:+.{digits}f}"


Row = tuple[str, Callable[[RunMetrics], float | None], bool, int]  # label, value, is a ratio, digits

_ROWS: tuple[Row, ...] = (
    ("precision", lambda m: m.matrix.precision, True, 1),
    ("recall", lambda m: m.matrix.recall, True, 1),
    ("F1", lambda m: m.matrix.f1, True, 1),
    ("accuracy", lambda m: m.matrix.accuracy, True, 1),
    ("true positives", lambda m: m.matrix.tp, False, 0),
    ("false positives", lambda m: m.matrix.fp, False, 0),
    ("false negatives", lambda m: m.matrix.fn, False, 0),
    ("true negatives", lambda m: m.matrix.tn, False, 0),
    ("undecided (unusable answer)", lambda m: m.undecided, False, 0),
    ("latency p50 (ms)", lambda m: m.latency_p50_ms, False, 1),
    ("latency p95 (ms)", lambda m: m.latency_p95_ms, False, 1),
    ("tokens per decision", lambda m: m.tokens_per_decision, False, 1),
    ("  prompt", lambda m: m.prompt_tokens_per_decision, False, 1),
    ("  completion (with reasoning)", lambda m: m.completion_tokens_per_decision, False, 1),
)


def evaluation_lines(report: EvaluationReport) -> list[str]:
    d = report.dataset
    labels = f", labels {','.join(d.labels)}" if d.kind is DatasetKind.OPENAI_MODERATION else ""
    limit = f" (--limit {d.limit})" if d.limit else ""
    out = [
        f"dataset: {d.path.name} ({d.kind.value}{labels})",
        f"  {d.rows_read} rows read{limit}; {len(d.texts)} evaluated ({d.positives} violations, "
        f"{d.negatives} safe); {d.excluded_unknown} excluded: label unknown",
    ]
    models = dict.fromkeys(run.spec.model for run in report.runs)
    out.append(f"model: {', '.join(models)}")
    out.extend(f"{run.spec.name}: {run.spec.describe()}" for run in report.runs)
    out.append("")
    metrics = [run.metrics for run in report.runs]
    names = [run.spec.name for run in report.runs]
    compare = len(metrics) == 2
    table: list[list[str]] = [["", *names, *(["change"] if compare else [])]]
    for label, value, ratio, digits in _ROWS:
        values = [value(m) for m in metrics]
        shown = [pct(v) if ratio else _num(v, digits) for v in values]
        if compare:
            shown.append(_delta_pct(values[0], values[1]) if ratio else _delta(values[0], values[1], digits))
        table.append([label, *shown])
    table.append(["reused from --out", *(str(run.reused) for run in report.runs), *([""] if compare else [])])
    out.extend(_columns(table))
    for run in report.runs:
        out.append("")
        out.extend(confusion_lines(run.spec.name, run.metrics.matrix))
    if compare:
        disagree = report.disagreements
        shown_ids = ", ".join(disagree[:SHOWN_DISAGREEMENTS]) + (" ..." if len(disagree) > SHOWN_DISAGREEMENTS else "")
        out.append("")
        out.append(
            f"rows where {names[0]} and {names[1]} disagree: {len(disagree)}" + (f" ({shown_ids})" if disagree else "")
        )
    if report.out is not None:
        out.append("")
        out.append(f"results saved to {report.out}")
    return out


def confusion_lines(name: str, m: ConfusionMatrix) -> list[str]:
    return _columns(
        [
            [f"confusion matrix {name}", "model: violation", "model: safe"],
            ["labelled violation", str(m.tp), str(m.fn)],
            ["labelled safe", str(m.fp), str(m.tn)],
        ]
    )


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            [row[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))]
        ).rstrip()
        for row in rows
    ]


def _verdict_word(j: Judgement) -> str:
    if not j.decided:
        return "unusable answer"
    return "violation" if j.violation else "safe"


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def policy_test_lines(report: PolicyTestReport) -> list[str]:
    doc = report.policy
    count = len(report.outcomes)
    out = [f"{doc.name} v{doc.version}: {count} cases from {report.cases_path}, effort {report.effort.value}"]
    width = max((len(o.case.id) for o in report.outcomes), default=0)
    for outcome in report.outcomes:
        out.extend(_case_lines(report, outcome, width))
    failed = report.failed
    passed = len(report.outcomes) - len(failed)
    rules_differ = sum(o.passed and o.rules_match is False for o in report.outcomes)
    m = report.matrix
    summary = (
        f"{passed} of {len(report.outcomes)} passed, {len(failed)} failed "
        f"(precision {pct(m.precision)}, recall {pct(m.recall)}, F1 {pct(m.f1)})"
    )
    if rules_differ and not report.strict_rules:
        summary += f"; {rules_differ} passed citing other rules than the case"
    out.append(summary)
    return out


def _case_lines(report: PolicyTestReport, outcome: CaseOutcome, width: int) -> list[str]:
    j, case = outcome.judgement, outcome.case
    expected = "violation" if case.label is Label.VIOLATION else "safe"
    rules = f" {','.join(j.rule_ids)}" if j.decided and j.violation and j.rule_ids else ""
    mark = "PASS" if report.case_passed(outcome) else "FAIL"
    line = f"{mark}  {case.id:<{width}}  expected {expected:<9}  model: {_verdict_word(j)}{rules}"
    if j.decided:
        line += f" ({j.confidence})"
    if outcome.rules_match is False:
        line += f"  [case cites {','.join(case.rule_ids)}]"
    lines = [line]
    if mark == "FAIL":
        lines.append(f"      text: {_snippet(case.text)}")
        if case.note:
            lines.append(f"      note: {case.note}")
        if j.rationale:
            lines.append(f"      model: {_snippet(j.rationale)}")
    return lines
