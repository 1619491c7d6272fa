"""`modbot policy test` against the deterministic fake model on loopback."""

from __future__ import annotations

import pytest

from tests.evaluation._cli import DATA, LINT, run_cli
from tests.fakes.ollama_fake import FakeOllama, Reply, content_of, verdict_json


async def test_every_case_passes(fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LINT)
    result = await run_cli("policy", "test", "good.md", host=fake_ollama.host)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "good v2: 12 cases from cases/good.jsonl, effort low"
    assert lines[1] == "PASS  gd-01  expected violation  model: violation GD1.a (high)"
    assert lines[7] == "PASS  gd-07  expected safe       model: safe (high)"
    assert lines[-1] == "12 of 12 passed, 0 failed (precision 100.0%, recall 100.0%, F1 100.0%)"
    # Every case went to the model once, with the policy as the system message.
    requests = fake_ollama.chat_requests()
    assert len(requests) == 12
    assert {content_of(r)["content"]["text"] for r in requests} >= {"@Rin you absolute idiot", "good game everyone"}
    assert all(r["messages"][0]["content"].startswith("# Insults (GD)") for r in requests)
    assert {r["think"] for r in requests} == {"low"}


async def test_failures_are_shown_and_exit_non_zero(fake_ollama: FakeOllama) -> None:
    result = await run_cli(
        "policy",
        "test",
        LINT / "good.md",
        "--cases",
        DATA / "mixed-cases.jsonl",
        "--effort",
        "high",
        host=fake_ollama.host,
    )
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert out[0].endswith("5 cases from " + str(DATA / "mixed-cases.jsonl") + ", effort high")
    assert out[1] == "PASS  mx-01  expected violation  model: violation GD1.a (high)"
    assert out[2] == "FAIL  mx-02  expected violation  model: safe (high)"
    assert out[3] == "      text: @Rin plays like a potato, hire a coach"
    assert out[4] == "      note: Mocks skill without a flagged word: the fake model misses it."
    assert out[5] == "      model: No rule applies."
    assert out[6] == "FAIL  mx-03  expected safe       model: violation GD1.a (high)"
    # Flagged under another rule than the case names: a pass, but marked.
    assert "PASS  mx-04  expected violation  model: violation GD1.a (high)  [case cites GD1.b]" in out
    assert out[-1] == (
        "3 of 5 passed, 2 failed (precision 66.7%, recall 66.7%, F1 66.7%); 1 passed citing other rules than the case"
    )
    assert {r["think"] for r in fake_ollama.chat_requests()} == {"high"}


async def test_strict_rules_fails_a_verdict_citing_other_rules(fake_ollama: FakeOllama) -> None:
    result = await run_cli(
        "policy",
        "test",
        LINT / "good.md",
        "--cases",
        DATA / "mixed-cases.jsonl",
        "--strict-rules",
        host=fake_ollama.host,
    )
    assert result.exit_code == 1
    assert "FAIL  mx-04  expected violation  model: violation GD1.a (high)  [case cites GD1.b]" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("2 of 5 passed, 3 failed")


async def test_an_unusable_answer_fails_the_case(fake_ollama: FakeOllama) -> None:
    def responder(request: dict[str, object]) -> Reply:
        text = content_of(request)["content"]["text"]  # type: ignore[arg-type]
        return Reply("not json at all") if text == "good game everyone" else Reply(verdict_json(0))

    fake_ollama.responder = responder
    result = await run_cli(
        "policy", "test", LINT / "good.md", "--cases", DATA / "mixed-cases.jsonl", host=fake_ollama.host
    )
    assert result.exit_code == 1
    assert "FAIL  mx-05  expected safe       model: unusable answer" in result.stdout
    # The classifier asks once more before giving up on a malformed answer.
    texts = [content_of(r)["content"]["text"] for r in fake_ollama.chat_requests()]
    assert texts.count("good game everyone") == 2


async def test_a_missing_model_says_how_to_pull_it(fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LINT)
    result = await run_cli("policy", "test", "good.md", "--model", "missing", host=fake_ollama.host)
    assert result.exit_code == 2
    assert "ollama pull missing" in result.stderr


async def test_a_broken_policy_is_not_sent(fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LINT)
    result = await run_cli("policy", "test", "broken-sections.md", host=fake_ollama.host)
    assert result.exit_code == 2
    assert "broken-sections.md:17: error: rule id BS1.a is already defined" in result.stderr
    assert fake_ollama.chat_requests() == []


async def test_no_cases_file(fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(LINT)
    result = await run_cli("policy", "test", "vague.md", host=fake_ollama.host)
    assert result.exit_code == 2
    assert "cases/vague.jsonl: no such file" in result.stderr
    assert "pass --cases FILE" in result.stderr
