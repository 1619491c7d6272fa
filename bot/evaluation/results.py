"""Evaluation runs and their results file: what was judged, the scores, and resuming from disk."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.domain import Effort
from bot.evaluation.datasets import Dataset, DatasetKind, Label
from bot.evaluation.metrics import ConfusionMatrix, mean, percentile
from bot.evaluation.runner import Judgement
from bot.policy_format import PolicyDocument

RESULTS_FORMAT = "modbot-eval/1"


@dataclass(frozen=True)
class RunSpec:
    """One column of an evaluation: a policy text, the model and the reasoning effort."""

    name: str  # "A", "B": the column heading
    policy: PolicyDocument
    policy_path: str
    model: str
    effort: Effort

    @property
    def policy_sha256(self) -> str:
        # The body is exactly what the model reads; a version bump with the same text is
        # the same run, and an edit without a version bump is not.
        return hashlib.sha256(self.policy.body.encode("utf-8")).hexdigest()

    @property
    def key(self) -> str:
        return f"{self.policy.name}@{self.policy_sha256[:16]}/{self.model}/{self.effort.value}"

    def describe(self) -> str:
        return f"{self.policy.name} v{self.policy.version} ({self.policy_path}), effort {self.effort.value}"


@dataclass(frozen=True)
class RunMetrics:
    matrix: ConfusionMatrix
    judged: int  # rows the model was asked about, decided or not
    undecided: int  # unusable answers: kept out of the matrix, counted here
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    tokens_per_decision: float | None
    prompt_tokens_per_decision: float | None
    completion_tokens_per_decision: float | None

    @classmethod
    def of(cls, judgements: Sequence[Judgement]) -> RunMetrics:
        decided = [j for j in judgements if j.decided]
        latencies = [j.latency_ms for j in judgements]
        return cls(
            matrix=ConfusionMatrix.of((j.label is Label.VIOLATION, bool(j.violation)) for j in decided),
            judged=len(judgements),
            undecided=len(judgements) - len(decided),
            latency_p50_ms=percentile(latencies, 50),
            latency_p95_ms=percentile(latencies, 95),
            # Every call costs tokens, an unusable answer too: all judgements count here.
            tokens_per_decision=mean([j.tokens for j in judgements]),
            prompt_tokens_per_decision=mean([j.prompt_tokens for j in judgements]),
            completion_tokens_per_decision=mean([j.completion_tokens for j in judgements]),
        )

    def to_json(self) -> dict[str, Any]:
        m = self.matrix
        return {
            "precision": m.precision,
            "recall": m.recall,
            "f1": m.f1,
            "accuracy": m.accuracy,
            "confusion_matrix": {"tp": m.tp, "fp": m.fp, "fn": m.fn, "tn": m.tn},
            "judged": self.judged,
            "undecided": self.undecided,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "tokens_per_decision": self.tokens_per_decision,
            "prompt_tokens_per_decision": self.prompt_tokens_per_decision,
            "completion_tokens_per_decision": self.completion_tokens_per_decision,
        }


@dataclass(frozen=True)
class RunReport:
    spec: RunSpec
    judgements: tuple[Judgement, ...]  # the dataset's rows, in file order
    reused: int  # judgements taken from the results file instead of the model

    @property
    def metrics(self) -> RunMetrics:
        return RunMetrics.of(self.judgements)


@dataclass(frozen=True)
class EvaluationReport:
    dataset: Dataset
    runs: tuple[RunReport, ...]
    out: Path | None = None

    @property
    def disagreements(self) -> list[str]:
        """Row ids where two compared runs both decided, and decided differently."""
        if len(self.runs) != 2:
            return []
        a = {j.id: j for j in self.runs[0].judgements}
        return [
            j.id
            for j in self.runs[1].judgements
            if j.decided and j.id in a and a[j.id].decided and a[j.id].violation != j.violation
        ]

    def dataset_json(self) -> dict[str, Any]:
        d = self.dataset
        return {
            "path": str(d.path),
            "kind": d.kind.value,
            "labels": list(d.labels),
            "limit": d.limit,
            "rows_read": d.rows_read,
            "excluded_unknown": d.excluded_unknown,
            "evaluated": len(d.texts),
            "positives": d.positives,
            "negatives": d.negatives,
        }


class ResultsMismatch(ValueError):
    """The --out file holds results of a different evaluation; resuming from it would mix them."""


class _StoredPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    version: int
    path: str
    sha256: str


class _StoredRun(BaseModel):
    model_config = ConfigDict(extra="ignore")  # metrics are recomputed, never read back

    key: str
    name: str
    policy: _StoredPolicy
    model: str
    effort: Effort
    judgements: list[Judgement]


class _StoredDataset(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str
    kind: DatasetKind
    labels: list[str]


class _StoredResults(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: Literal["modbot-eval/1"]
    dataset: _StoredDataset
    runs: list[_StoredRun]


@dataclass
class ResultsFile:
    """The --out file: loaded before a run to skip finished rows, rewritten as rows finish.

    Judgements of rows outside this run's selection (an earlier, longer --limit) and runs
    this command does not ask for (an earlier --compare) are kept: they cost model time.
    """

    path: Path | None
    dataset: Dataset
    judged: dict[str, dict[str, Judgement]] = field(default_factory=dict)  # run key -> id -> judgement
    _stored_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _unsaved: int = 0

    @classmethod
    def open(cls, path: Path | None, dataset: Dataset) -> ResultsFile:
        book = cls(path, dataset)
        if path is None or not path.exists():
            return book
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            stored = _StoredResults.model_validate(raw)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
            raise ResultsMismatch(
                f"{path}: not a modbot evaluation results file ({type(exc).__name__}): choose another --out"
            ) from exc
        book._check_dataset(stored.dataset)
        labels = {t.id: t.label for t in dataset.texts}
        for run, raw_run in zip(stored.runs, raw["runs"], strict=True):
            book._stored_runs[run.key] = raw_run
            for j in run.judgements:
                if j.id in labels and labels[j.id] is not j.label:
                    raise ResultsMismatch(
                        f"{path}: row {j.id} is labelled {j.label.value} there but {labels[j.id].value} in "
                        f"{dataset.path}: the dataset changed; choose another --out, or delete it to start again"
                    )
            book.judged[run.key] = {j.id: j for j in run.judgements}
        return book

    def _check_dataset(self, stored: _StoredDataset) -> None:
        d = self.dataset
        ours = (d.kind, tuple(d.labels), d.path.name)
        theirs = (stored.kind, tuple(stored.labels), Path(stored.path).name)
        if ours != theirs:
            raise ResultsMismatch(
                f"{self.path} holds results for {Path(stored.path).name} ({stored.kind.value}, labels "
                f"{','.join(stored.labels) or 'none'}), not {d.path.name} ({d.kind.value}, labels "
                f"{','.join(d.labels) or 'none'}): choose another --out, or delete it to start again"
            )

    def done(self, spec: RunSpec) -> dict[str, Judgement]:
        return self.judged.setdefault(spec.key, {})

    def add(self, spec: RunSpec, judgement: Judgement) -> None:
        self.done(spec)[judgement.id] = judgement
        self._unsaved += 1

    @property
    def unsaved(self) -> int:
        return self._unsaved

    def report(self, specs: Sequence[RunSpec], reused: dict[str, int]) -> EvaluationReport:
        runs = []
        for spec in specs:
            done = self.done(spec)
            runs.append(
                RunReport(spec, tuple(done[t.id] for t in self.dataset.texts if t.id in done), reused.get(spec.key, 0))
            )
        return EvaluationReport(self.dataset, tuple(runs), self.path)

    def save(self, specs: Sequence[RunSpec], reused: dict[str, int]) -> None:
        """Write atomically: an interrupted write leaves the previous checkpoint intact."""
        if self.path is None:
            return
        report = self.report(specs, reused)
        order = {t.id: i for i, t in enumerate(self.dataset.texts)}
        runs: list[dict[str, Any]] = []
        for run in report.runs:
            every = sorted(self.done(run.spec).values(), key=lambda j: (order.get(j.id, len(order)), j.id))
            runs.append(_run_json(run, every))
        current = {spec.key for spec in specs}
        runs.extend(raw for key, raw in self._stored_runs.items() if key not in current)
        document = {
            "format": RESULTS_FORMAT,
            "dataset": report.dataset_json(),
            "runs": runs,
            "disagreements": report.disagreements,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_name(self.path.name + ".partial")
        scratch.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        scratch.replace(self.path)
        self._unsaved = 0


def _run_json(run: RunReport, judgements: Iterable[Judgement]) -> dict[str, Any]:
    spec = run.spec
    return {
        "key": spec.key,
        "name": spec.name,
        "policy": {
            "name": spec.policy.name,
            "version": spec.policy.version,
            "path": spec.policy_path,
            "sha256": spec.policy_sha256,
        },
        "model": spec.model,
        "effort": spec.effort.value,
        "metrics": run.metrics.to_json(),
        "judgements": [j.model_dump(mode="json") for j in judgements],
    }
