"""`modbot eval`: metrics on a tiny OpenAI-format sample, unknown labels, resuming, and --compare."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.evaluation._cli import LINT, OPENAI_SAMPLE, run_cli
from tests.fakes.ollama_fake import FakeOllama, Reply, content_of, system_of, verdict_json

GOOD = LINT / "good.md"  # eval_labels: H

# The sample's rows (see test_datasets.py) and what the fake model flags: it flags text
# containing "idiot", "scam", "kill you" or "badword".
H_ROWS = ["L1", "L2", "L3", "L4", "L5", "L8", "L9", "L10", "L11", "L12"]


def in_order(ids: list[str]) -> list[str]:
    """The sample's texts of these rows (ids are L<line>)."""
    lines = gzip.decompress(OPENAI_SAMPLE.read_bytes()).decode().splitlines()
    return [json.loads(lines[int(i[1:]) - 1])["prompt"] for i in ids]


def prompts(ids: list[str]) -> set[str]:
    return set(in_order(ids))


def sent_texts(fake: FakeOllama) -> list[str]:
    return [content_of(r)["content"]["text"] for r in fake.chat_requests()]


def row(stdout: str, label: str) -> list[str]:
    """The cells of one table row, e.g. row(out, "precision") -> ["40.0%"]."""
    for line in stdout.splitlines():
        if line.startswith(label + " "):
            rest = line[len(label) :].split()
            if rest:
                return rest
    raise AssertionError(f"no row {label!r} in:\n{stdout}")


async def test_metrics_under_the_policys_label_mapping(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = await run_cli("eval", "--policy", GOOD, "--dataset", OPENAI_SAMPLE, "--out", out, host=fake_ollama.host)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "dataset: openai-moderation-sample.jsonl.gz (openai-moderation-2022, labels H)"
    assert lines[1] == "  13 rows read; 10 evaluated (4 violations, 6 safe); 3 excluded: label unknown"
    assert lines[2] == "model: gpt-oss-safeguard:20b"
    assert lines[3] == f"A: good v2 ({GOOD}), effort low"
    # By hand: flagged L1 L3 (violations), L5 L10 L12 (safe); missed L4 L9.
    assert row(result.stdout, "precision") == ["40.0%"]
    assert row(result.stdout, "recall") == ["50.0%"]
    assert row(result.stdout, "F1") == ["44.4%"]
    assert row(result.stdout, "accuracy") == ["50.0%"]
    assert [
        row(result.stdout, k)[0] for k in ("true positives", "false positives", "false negatives", "true negatives")
    ] == [
        "2",
        "3",
        "2",
        "3",
    ]
    assert row(result.stdout, "tokens per decision") == ["150.0"]  # the fake: 120 prompt + 30 completion
    assert "labelled violation                 2            2" in result.stdout
    assert "labelled safe                      3            3" in result.stdout
    assert "latency p95 (ms)" in result.stdout
    # Rows with an unknown label never reach the model.
    assert sorted(sent_texts(fake_ollama)) == sorted(prompts(H_ROWS))
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["format"] == "modbot-eval/1"
    assert saved["dataset"]["excluded_unknown"] == 3
    run = saved["runs"][0]
    assert run["metrics"]["f1"] == pytest.approx(4 / 9)
    assert run["metrics"]["confusion_matrix"] == {"tp": 2, "fp": 3, "fn": 2, "tn": 3}
    assert [j["id"] for j in run["judgements"]] == H_ROWS
    assert run["policy"]["version"] == 2


async def test_labels_override_changes_which_rows_count(fake_ollama: FakeOllama) -> None:
    result = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--labels", "H,H2", host=fake_ollama.host)
    assert result.exit_code == 0, result.output
    assert "labels H,H2" in result.stdout.splitlines()[0]
    # L10 (H=0, H2 missing) is now unknown and excluded; L13 (only H2=1) is a missed violation.
    assert "10 evaluated (5 violations, 5 safe); 3 excluded: label unknown" in result.stdout
    assert row(result.stdout, "precision") == ["50.0%"]
    assert row(result.stdout, "recall") == ["40.0%"]
    assert prompts(["L10"]).isdisjoint(sent_texts(fake_ollama))


async def test_limit(fake_ollama: FakeOllama) -> None:
    result = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--limit", "4", host=fake_ollama.host)
    assert result.exit_code == 0, result.output
    assert "4 rows read (--limit 4); 4 evaluated" in result.stdout
    assert len(fake_ollama.chat_requests()) == 4


async def test_resume_sends_only_the_rows_missing_from_out(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    first = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--out", out, host=fake_ollama.host)
    assert first.exit_code == 0
    # An interrupted run: the file holds the first four rows only.
    document = json.loads(out.read_text(encoding="utf-8"))
    document["runs"][0]["judgements"] = document["runs"][0]["judgements"][:4]
    out.write_text(json.dumps(document), encoding="utf-8")
    fake_ollama.rec.requests.clear()

    result = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--out", out, host=fake_ollama.host)
    assert result.exit_code == 0, result.output
    assert sorted(sent_texts(fake_ollama)) == sorted(prompts(H_ROWS[4:]))
    assert row(result.stdout, "reused from --out") == ["4"]
    assert row(result.stdout, "F1") == ["44.4%"]  # the same figures as the uninterrupted run
    assert len(json.loads(out.read_text(encoding="utf-8"))["runs"][0]["judgements"]) == 10


async def test_a_run_stopped_by_the_model_server_resumes(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    calls = 0

    def gone() -> web.Response:
        return web.json_response({"error": "model 'gpt-oss-safeguard:20b' not found"}, status=404)

    def responder(request: dict[str, Any]) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 3:  # the server loses the model after the third answer
            fake_ollama.rec.inject("POST", "/api/chat", gone, times=1000)
        return fake_ollama.default_reply(request)

    fake_ollama.responder = responder
    stopped = await run_cli(
        "eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--out", out, "--concurrency", "1", host=fake_ollama.host
    )
    assert stopped.exit_code == 2
    assert "stopped after 3 of 10 rows" in stopped.stderr
    assert "run the same command again to resume" in stopped.stderr
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert [j["id"] for j in saved["runs"][0]["judgements"]] == H_ROWS[:3]

    fake_ollama.rec._faults.clear()  # the model is back
    fake_ollama.rec.requests.clear()
    resumed = await run_cli(
        "eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--out", out, "--concurrency", "1", host=fake_ollama.host
    )
    assert resumed.exit_code == 0, resumed.output
    assert sent_texts(fake_ollama) == in_order(H_ROWS[3:])
    assert row(resumed.stdout, "reused from --out") == ["3"]
    assert row(resumed.stdout, "F1") == ["44.4%"]


async def test_out_from_another_mapping_is_refused(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    assert (await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "-o", out, host=fake_ollama.host)).exit_code == 0
    before = out.read_text(encoding="utf-8")
    fake_ollama.rec.requests.clear()
    result = await run_cli(
        "eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "-o", out, "--labels", "H,H2", host=fake_ollama.host
    )
    assert result.exit_code == 2
    assert "labels H), not openai-moderation-sample.jsonl.gz (openai-moderation-2022, labels H,H2)" in result.stderr
    assert "choose another --out" in result.stderr
    assert fake_ollama.chat_requests() == []
    assert out.read_text(encoding="utf-8") == before


async def test_a_file_that_is_not_results_is_refused(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "notes.json"
    out.write_text('{"hello": 1}', encoding="utf-8")
    result = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "-o", out, host=fake_ollama.host)
    assert result.exit_code == 2
    assert "not a modbot evaluation results file" in result.stderr
    assert out.read_text(encoding="utf-8") == '{"hello": 1}'


# ---------------------------------------------------------------- --compare

SLUR_HINT = "Treat the words vermin and disease, said of a group, as HS slurs."


def policy_aware(request: dict[str, Any]) -> Reply:
    """The fake flags 'disease'/'vermin' only when the policy tells it to; 'driven out' only at high effort."""
    text = str(content_of(request)["content"]["text"])
    if SLUR_HINT in system_of(request) and ("disease" in text or "vermin" in text):
        return Reply(verdict_json(1, ["GD1.a"]))
    if request.get("think") == "high" and "driven out" in text:
        return Reply(verdict_json(1, ["GD1.a"]))
    flagged = any(w in text.casefold() for w in ("idiot", "scam", "kill you", "badword"))
    return Reply(verdict_json(1, ["GD1.a"]) if flagged else verdict_json(0))


def stricter_policy(tmp_path: Path) -> Path:
    text = GOOD.read_text(encoding="utf-8").replace("version: 2", "version: 3")
    text = text.replace("## DEFINITIONS\n", f"## DEFINITIONS\n- **Slur**: {SLUR_HINT}\n")
    path = tmp_path / "good.md"
    path.write_text(text, encoding="utf-8")
    return path


async def test_compare_two_policy_versions_on_the_same_rows(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    fake_ollama.responder = policy_aware
    v3 = stricter_policy(tmp_path)
    out = tmp_path / "compare.json"
    result = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--compare", v3, "-o", out, host=fake_ollama.host)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"A: good v2 ({GOOD}), effort low" in lines
    assert f"B: good v3 ({v3}), effort low" in lines
    assert ["A", "B", "change"] in [line.split() for line in lines]
    assert row(result.stdout, "recall") == ["50.0%", "75.0%", "+25.0", "pts"]
    assert row(result.stdout, "precision") == ["40.0%", "50.0%", "+10.0", "pts"]
    assert row(result.stdout, "false negatives") == ["2", "1", "-1"]
    assert "rows where A and B disagree: 1 (L9)" in lines
    # Both versions saw exactly the same rows, one run after the other.
    requests = fake_ollama.chat_requests()
    a_texts = [content_of(r)["content"]["text"] for r in requests if SLUR_HINT not in system_of(r)]
    b_texts = [content_of(r)["content"]["text"] for r in requests if SLUR_HINT in system_of(r)]
    assert sorted(a_texts) == sorted(b_texts) == sorted(prompts(H_ROWS))
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert [r["name"] for r in saved["runs"]] == ["A", "B"]
    assert saved["disagreements"] == ["L9"]
    assert saved["runs"][1]["policy"]["version"] == 3


async def test_compare_two_effort_levels(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    fake_ollama.responder = policy_aware
    out = tmp_path / "efforts.json"
    result = await run_cli(
        "eval",
        "-p",
        GOOD,
        "-d",
        OPENAI_SAMPLE,
        "--effort",
        "low",
        "--compare",
        "high",
        "-o",
        out,
        host=fake_ollama.host,
    )
    assert result.exit_code == 0, result.output
    assert f"B: good v2 ({GOOD}), effort high" in result.stdout
    assert row(result.stdout, "true positives") == ["2", "3", "+1"]
    assert "rows where A and B disagree: 1 (L4)" in result.stdout
    # Sequential runs: all low-effort requests, then all high-effort ones (the prefix cache stays warm).
    assert [r["think"] for r in fake_ollama.chat_requests()] == ["low"] * 10 + ["high"] * 10

    # A later single run with the same --out reuses run A and keeps run B in the file.
    fake_ollama.rec.requests.clear()
    again = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "-o", out, host=fake_ollama.host)
    assert again.exit_code == 0
    assert fake_ollama.chat_requests() == []
    assert [r["effort"] for r in json.loads(out.read_text(encoding="utf-8"))["runs"]] == ["low", "high"]


async def test_compare_with_nothing_different_is_refused(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    same = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--compare", "low", host=fake_ollama.host)
    assert same.exit_code == 2
    assert "already the --effort" in same.stderr
    copy = tmp_path / "good.md"
    copy.write_text(GOOD.read_text(encoding="utf-8"), encoding="utf-8")
    identical = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--compare", copy, host=fake_ollama.host)
    assert identical.exit_code == 2
    assert "identical" in identical.stderr
    assert fake_ollama.chat_requests() == []


async def test_compared_policies_with_different_mappings_need_labels(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    other = tmp_path / "good.md"
    text = GOOD.read_text(encoding="utf-8").replace("eval_labels: H", "eval_labels: HR")
    other.write_text(text.replace("Insults aimed", "Abuse aimed").replace("# Insults", "# Abuse"), encoding="utf-8")
    result = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--compare", other, host=fake_ollama.host)
    assert result.exit_code == 2
    assert "map different dataset labels (H vs HR)" in result.stderr
    assert "choose one with --labels" in result.stderr
    chosen = await run_cli(
        "eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--compare", other, "--labels", "HR", host=fake_ollama.host
    )
    assert chosen.exit_code == 0, chosen.output


# ---------------------------------------------------------------- other datasets and errors


async def test_eval_on_policy_cases(fake_ollama: FakeOllama) -> None:
    cases = LINT / "cases" / "good.jsonl"
    result = await run_cli("eval", "-p", GOOD, "-d", cases, host=fake_ollama.host)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "dataset: good.jsonl (modbot-cases)"
    assert row(result.stdout, "F1") == ["100.0%"]
    refused = await run_cli("eval", "-p", GOOD, "-d", cases, "--labels", "H", host=fake_ollama.host)
    assert refused.exit_code == 2
    assert "drop --labels" in refused.stderr


async def test_a_policy_without_eval_labels_needs_labels(fake_ollama: FakeOllama) -> None:
    result = await run_cli("eval", "-p", LINT / "vague.md", "-d", OPENAI_SAMPLE, host=fake_ollama.host)
    assert result.exit_code == 2
    assert "pass --labels H" in result.stderr


async def test_concurrency_bounds_requests_in_flight(fake_ollama: FakeOllama) -> None:
    fake_ollama.latency = 0.02
    result = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, "--concurrency", "2", host=fake_ollama.host)
    assert result.exit_code == 0, result.output
    assert len(fake_ollama.chat_requests()) == 10
    assert fake_ollama.peak_in_flight <= 2


async def test_progress_goes_to_stderr(fake_ollama: FakeOllama) -> None:
    result = await run_cli("eval", "-p", GOOD, "-d", OPENAI_SAMPLE, host=fake_ollama.host)
    assert "10/10" in result.stderr
    assert "10/10" not in result.stdout
