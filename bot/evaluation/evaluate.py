"""The evaluation service: a dataset through one or two runs, resumable; and a policy's own cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.classifier import ModelRequestRejected, ModelUnavailable
from bot.domain import Effort
from bot.evaluation.datasets import Label, LabelledText
from bot.evaluation.metrics import ConfusionMatrix
from bot.evaluation.results import EvaluationReport, ResultsFile, RunSpec
from bot.evaluation.runner import EVAL_PLATFORM, Judgement, judge_texts
from bot.policy_format import PolicyDocument
from bot.policy_library import as_policy
from bot.ports import Classifier

# A checkpoint every this many judgements: at GPU speed (about 1.6 s a row) a crash loses
# well under a minute, and rewriting the file stays cheap next to the model calls.
CHECKPOINT_EVERY = 10


class Progress(Protocol):
    """Where a run reports how far it is (the console shows a progress bar)."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self) -> None: ...


class EvaluationInterrupted(RuntimeError):
    """The model stopped answering mid-run; what was judged so far is in the results file."""

    def __init__(self, cause: Exception, judged: int, total: int, out: Path | None) -> None:
        self.cause, self.judged, self.total, self.out = cause, judged, total, out
        where = (
            f"the {judged} judged rows are saved in {out}: run the same command again to resume"
            if out is not None
            else "nothing was saved: pass --out FILE to make a run resumable"
        )
        super().__init__(f"stopped after {judged} of {total} rows: {cause}; {where}")


async def run_evaluation(
    classifier: Classifier,
    results: ResultsFile,
    specs: Sequence[RunSpec],
    *,
    concurrency: int,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Judge every row of the dataset under each run, skipping rows the results file holds.

    Runs go one after the other, not interleaved: the model server keeps one policy's prefix
    cached per slot, and alternating two policies would evict it on every request.
    """
    keys = [spec.key for spec in specs]
    if len(set(keys)) != len(keys):
        raise ValueError("the compared runs are identical (same policy text, model and effort): nothing to compare")
    texts = results.dataset.texts
    todo = {spec.key: [t for t in texts if t.id not in results.done(spec)] for spec in specs}
    reused = {spec.key: len(texts) - len(todo[spec.key]) for spec in specs}
    total = len(texts) * len(specs)
    judged = sum(reused.values())
    if progress is not None:
        progress.start(total, judged)
    try:
        for spec in specs:

            def record(judgement: Judgement, spec: RunSpec = spec) -> None:
                nonlocal judged
                results.add(spec, judgement)
                judged += 1
                if progress is not None:
                    progress.advance()
                if results.unsaved >= CHECKPOINT_EVERY:
                    results.save(specs, reused)

            try:
                await judge_texts(
                    classifier,
                    as_policy(spec.policy, EVAL_PLATFORM),
                    todo[spec.key],
                    spec.effort,
                    concurrency=concurrency,
                    on_judgement=record,
                )
            except (ModelUnavailable, ModelRequestRejected) as exc:
                raise EvaluationInterrupted(exc, judged, total, results.path) from exc
    finally:
        # Also on Ctrl-C (cancellation): whatever was judged is kept for the next run.
        results.save(specs, reused)
    return results.report(specs, reused)


@dataclass(frozen=True)
class CaseOutcome:
    case: LabelledText
    judgement: Judgement

    @property
    def passed(self) -> bool:
        return self.judgement.correct

    @property
    def rules_match(self) -> bool | None:
        """For a labelled violation: does the model cite one of the case's rules? None: not checked.

        Only violations are checked: a safe verdict may cite no rule at all and still be right.
        """
        if self.case.label is not Label.VIOLATION or not self.case.rule_ids or not self.judgement.violation:
            return None
        cited = set(self.judgement.rule_ids)
        if self.judgement.policy_category:
            cited.add(self.judgement.policy_category)
        return bool(cited & set(self.case.rule_ids))


@dataclass(frozen=True)
class PolicyTestReport:
    policy: PolicyDocument
    cases_path: Path
    effort: Effort
    outcomes: tuple[CaseOutcome, ...]
    strict_rules: bool = False

    def case_passed(self, outcome: CaseOutcome) -> bool:
        return outcome.passed and not (self.strict_rules and outcome.rules_match is False)

    @property
    def failed(self) -> list[CaseOutcome]:
        return [o for o in self.outcomes if not self.case_passed(o)]

    @property
    def matrix(self) -> ConfusionMatrix:
        return ConfusionMatrix.of(
            (o.case.label is Label.VIOLATION, bool(o.judgement.violation)) for o in self.outcomes if o.judgement.decided
        )


async def run_policy_test(
    classifier: Classifier,
    policy: PolicyDocument,
    cases: Sequence[LabelledText],
    cases_path: Path,
    effort: Effort,
    *,
    concurrency: int,
    strict_rules: bool = False,
    progress: Progress | None = None,
) -> PolicyTestReport:
    """Every labelled case of a policy through the model; a case passes when the verdict matches."""
    if progress is not None:
        progress.start(len(cases), 0)
    judgements = await judge_texts(
        classifier,
        as_policy(policy, EVAL_PLATFORM),
        cases,
        effort,
        concurrency=concurrency,
        on_judgement=(lambda _: progress.advance()) if progress is not None else None,
    )
    by_id = {j.id: j for j in judgements}
    outcomes = tuple(CaseOutcome(case, by_id[case.id]) for case in cases)
    return PolicyTestReport(policy, cases_path, effort, outcomes, strict_rules)
