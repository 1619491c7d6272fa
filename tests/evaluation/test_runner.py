"""The evaluation service with an in-memory Classifier port: checkpoints and cancellation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.classifier import ClassificationRequest
from bot.domain import Confidence, Effort, Verdict
from bot.evaluation import ResultsFile, RunSpec, load_dataset, run_evaluation
from bot.evaluation.evaluate import CHECKPOINT_EVERY
from bot.policy_format import load_policy_file
from tests.evaluation._cli import LINT


class StallingClassifier:
    """Answers 'safe' at once, until call number `stall_at`, which waits until cancelled."""

    def __init__(self, stall_at: int) -> None:
        self.stall_at = stall_at
        self.calls = 0
        self.stalled = asyncio.Event()

    async def classify(self, request: ClassificationRequest) -> Verdict:
        self.calls += 1
        if self.calls == self.stall_at:
            self.stalled.set()
            await asyncio.Event().wait()
        return Verdict(policy=request.policy.name, policy_version=request.policy.version, confidence=Confidence.HIGH)


def judged_ids(out: Path) -> list[str]:
    return [j["id"] for j in json.loads(out.read_text(encoding="utf-8"))["runs"][0]["judgements"]]


async def test_checkpoints_while_running_and_saves_on_cancel(tmp_path: Path) -> None:
    dataset = load_dataset(LINT / "cases" / "good.jsonl")
    assert len(dataset.texts) == 12 > CHECKPOINT_EVERY
    spec = RunSpec("A", load_policy_file(LINT / "good.md"), "good.md", "m", Effort.LOW)
    out = tmp_path / "results.json"
    classifier = StallingClassifier(stall_at=12)
    run = asyncio.create_task(run_evaluation(classifier, ResultsFile.open(out, dataset), [spec], concurrency=1))
    await asyncio.wait_for(classifier.stalled.wait(), 5)
    # Eleven judged, the twelfth in flight: the file holds the checkpoint after ten.
    ids = [t.id for t in dataset.texts]
    assert judged_ids(out) == ids[:CHECKPOINT_EVERY]
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert judged_ids(out) == ids[:11]
    assert not (tmp_path / "results.json.partial").exists()

    # The next run asks only for the row that was in flight.
    resumed = StallingClassifier(stall_at=0)
    report = await run_evaluation(resumed, ResultsFile.open(out, dataset), [spec], concurrency=1)
    assert resumed.calls == 1
    assert report.runs[0].reused == 11
    assert len(report.runs[0].judgements) == 12
