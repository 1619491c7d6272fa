"""`modbot policy lint|test`, `modbot eval`, `modbot report` (issue 4): thin over bot.evaluation."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from adapters.console.options import (
    PLATFORM,
    EffortChoice,
    PlatformOption,
    app,
    fail,
    load_settings,
    operator,
    policy_app,
    with_app,
)

if TYPE_CHECKING:
    from bot.classifier import ModelClassifier, RetryPolicy
    from bot.evaluation import RunSpec
    from bot.policy_format import PolicyDocument
    from bot.settings import ModbotSettings

__all__ = ["app", "policy_app"]


def eval_retry() -> RetryPolicy:
    """A long evaluation outlives a model server hiccup (a 503 from a full queue, a restart),
    but not a server that stays down: then it stops, saved, and a rerun resumes it."""
    from bot.classifier import RetryPolicy

    return RetryPolicy(max_attempts=6, initial_seconds=1.0, max_seconds=30.0)


EffortOption = Annotated[
    EffortChoice | None, typer.Option("--effort", help="Reasoning effort. Default: $MODBOT_DEFAULT_EFFORT (low).")
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option("--concurrency", min=1, max=64, help="Model requests in flight. Default: $MODBOT_MODEL_CONCURRENCY."),
]
ModelOption = Annotated[str | None, typer.Option("--model", help="Ollama model tag. Default: $MODBOT_MODEL.")]


class _Bar:
    """tqdm on stderr, so stdout keeps only the table."""

    def __init__(self, unit: str) -> None:
        self._unit = unit
        self._bar: Any = None

    def start(self, total: int, done: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, initial=done, file=sys.stderr, unit=self._unit, mininterval=0.5, dynamic_ncols=True
        )

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _classifier(settings: ModbotSettings, model: str | None, concurrency: int | None) -> ModelClassifier:
    from bot.bootstrap import build_classifier

    update: dict[str, object] = {}
    if model:
        update["model"] = model
    if concurrency:
        update["model_concurrency"] = concurrency
    return build_classifier(settings.model_copy(update=update), eval_retry())


def _policy(path: Path, option: str) -> PolicyDocument:
    from bot.policy_format import PolicyFormatError, load_policy_file

    if not path.is_file():
        raise fail(f"{option} {path}: no such policy file")
    try:
        return load_policy_file(path)
    except PolicyFormatError as exc:
        raise fail(f"{path} has errors; fix them (see `modbot policy lint {path}`):\n{exc}") from exc


# ---------------------------------------------------------------- policy lint


@policy_app.command("lint")
def lint(
    files: Annotated[list[Path], typer.Argument(help="Policy files, or folders of them (*.md).")],
    no_cases: Annotated[bool, typer.Option("--no-cases", help="Do not check cases/<name>.jsonl beside each.")] = False,
) -> None:
    """Check policy files: sections, rule ids, output format, length, vague words, and their cases.

    Prints `file:line: severity: message` and each file's token estimate. Exit code 1 on errors.
    """
    from bot.evaluation import lint_policy_files

    paths: list[Path] = []
    for given in files:
        paths.extend(sorted(given.glob("*.md")) if given.is_dir() else [given])
    if not paths:
        raise fail("no policy files to lint: the folders given hold no *.md files")
    report = lint_policy_files(paths, check_cases=not no_cases)
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(1 if report.errors else 0)


# ---------------------------------------------------------------- policy test


@policy_app.command("test")
def policy_test(
    file: Annotated[Path, typer.Argument(help="The policy file.")],
    cases: Annotated[
        Path | None, typer.Option("--cases", help="Labelled cases (JSON lines). Default: cases/<name>.jsonl beside it.")
    ] = None,
    effort: EffortOption = None,
    concurrency: ConcurrencyOption = None,
    model: ModelOption = None,
    strict_rules: Annotated[
        bool, typer.Option("--strict-rules", help="Also fail a violation whose verdict cites none of the case's rules.")
    ] = False,
) -> None:
    """Run a policy's labelled cases through the model: pass/fail per case, then a summary.

    Exit code 1 when a case fails, 2 when the policy, the cases or the model cannot be used.
    """
    from bot.classifier import ModelRequestRejected, ModelUnavailable
    from bot.domain import Effort
    from bot.evaluation import DatasetError, cases_path_for, load_cases, policy_test_lines, run_policy_test

    settings = load_settings()
    doc = _policy(file, "policy")
    cases_path = cases or cases_path_for(file)
    try:
        texts = load_cases(cases_path)
    except DatasetError as exc:
        hint = "" if cases else " (pass --cases FILE)"
        raise fail(f"{exc}{hint}") from exc
    if not texts:
        raise fail(f"{cases_path} holds no cases")
    chosen_effort = Effort(effort.value) if effort else settings.default_effort
    classifier = _classifier(settings, model, concurrency)
    bar = _Bar("case")

    async def go() -> int:
        try:
            report = await run_policy_test(
                classifier,
                doc,
                texts,
                cases_path,
                chosen_effort,
                concurrency=concurrency or settings.model_concurrency,
                strict_rules=strict_rules,
                progress=bar,
            )
        except (ModelUnavailable, ModelRequestRejected) as exc:
            bar.close()
            typer.echo(f"modbot: {exc}", err=True)
            return 2
        finally:
            await classifier.aclose()
        bar.close()
        for line in policy_test_lines(report):
            typer.echo(line)
        return 1 if report.failed else 0

    raise typer.Exit(asyncio.run(go()))


# ---------------------------------------------------------------- eval


def _compare_spec(value: str, base: RunSpec) -> RunSpec:
    """`--compare high` compares efforts; anything else is a second policy file."""
    from bot.domain import Effort
    from bot.evaluation import RunSpec

    if value in {e.value for e in Effort}:
        effort = Effort(value)
        if effort is base.effort:
            raise fail(f"--compare {value}: that is already the --effort; choose another level")
        return RunSpec("B", base.policy, base.policy_path, base.model, effort)
    path = Path(value)
    doc = _policy(path, "--compare")
    if doc.name != base.policy.name:
        typer.echo(f"modbot: note: comparing two different policies ({base.policy.name} and {doc.name})", err=True)
    spec = RunSpec("B", doc, str(path), base.model, base.effort)
    if spec.key == base.key:
        raise fail(f"--compare {value}: its text is identical to {base.policy_path}; nothing to compare")
    return spec


def _labels(labels: str | None, docs: list[PolicyDocument]) -> tuple[str, ...]:
    from bot.evaluation import parse_labels

    if labels is not None:
        return parse_labels(labels)
    mapped = list(dict.fromkeys(doc.eval_labels for doc in docs))
    if len(mapped) > 1:
        shown = " vs ".join(",".join(m) or "none" for m in mapped)
        raise fail(f"the compared policies map different dataset labels ({shown}): choose one with --labels")
    return mapped[0]


@app.command("eval")
def evaluate(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="The policy file to evaluate.")],
    dataset: Annotated[
        Path, typer.Option("--dataset", "-d", help="Policy cases (.jsonl) or the OpenAI moderation set (.jsonl[.gz]).")
    ],
    labels: Annotated[
        str | None,
        typer.Option("--labels", help="Dataset labels that mean 'violates', e.g. H or H,H2. Default: eval_labels."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N rows of the dataset.")] = None,
    effort: EffortOption = None,
    concurrency: ConcurrencyOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Results JSON; an existing one is resumed.")] = None,
    compare: Annotated[
        str | None,
        typer.Option("--compare", help="A second policy file, or an effort level (low|medium|high), side by side."),
    ] = None,
    model: ModelOption = None,
) -> None:
    """Precision, recall, F1, confusion matrix, latency and tokens of a policy on a labelled dataset.

    Rows whose mapped labels are missing are excluded and counted, never taken as safe.
    """
    from bot.domain import Effort
    from bot.evaluation import (
        DatasetError,
        DatasetKind,
        EvaluationInterrupted,
        ResultsFile,
        ResultsMismatch,
        RunSpec,
        dataset_kind,
        evaluation_lines,
        load_dataset,
        parse_labels,
        run_evaluation,
    )

    settings = load_settings()
    doc = _policy(policy, "--policy")
    base = RunSpec(
        "A", doc, str(policy), model or settings.model, Effort(effort.value) if effort else settings.default_effort
    )
    specs = [base] if compare is None else [base, _compare_spec(compare, base)]
    try:
        if dataset_kind(dataset) is DatasetKind.OPENAI_MODERATION:
            mapping = _labels(labels, [s.policy for s in specs])
        else:  # policy cases carry their own labels; load_dataset explains why --labels is refused
            mapping = parse_labels(labels) if labels is not None else ()
        rows = load_dataset(dataset, mapping, limit)
        results = ResultsFile.open(out, rows)
    except (DatasetError, ResultsMismatch) as exc:
        raise fail(str(exc)) from exc
    if not rows.texts:
        raise fail(f"{dataset}: no row has a known label under {','.join(rows.labels)}: nothing to evaluate")
    classifier = _classifier(settings, model, concurrency)
    bar = _Bar("row")

    async def go() -> int:
        try:
            report = await run_evaluation(
                classifier, results, specs, concurrency=concurrency or settings.model_concurrency, progress=bar
            )
        except EvaluationInterrupted as exc:
            bar.close()
            typer.echo(f"modbot: {exc}", err=True)
            return 2
        finally:
            await classifier.aclose()
        bar.close()
        for line in evaluation_lines(report):
            typer.echo(line)
        return 0

    raise typer.Exit(asyncio.run(go()))


# ---------------------------------------------------------------- report


_RELATIVE = re.compile(r"^(\d+)([dh])$")


def parse_since(value: str, now: datetime) -> datetime:
    """`7d`, `24h`, or an ISO date/datetime (UTC unless it says otherwise)."""
    relative = _RELATIVE.match(value.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise fail(f"--since {value!r}: give 7d, 24h, or a date such as 2025-01-31") from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@app.command("report")
def report(
    server: Annotated[str, typer.Option("--server", "-s", help="The server (guild or workspace) id.")],
    platform: PlatformOption = PLATFORM,
    db: Annotated[Path | None, typer.Option("--db", help="SQLite file. Default: $MODBOT_DB or modbot.db.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only cases decided since: 7d, 24h or an ISO date.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of readable text.")] = False,
) -> None:
    """Shadow evaluation: the model's verdicts against moderators' decisions, per policy and rule."""
    settings = load_settings(db)
    if not settings.db.exists():
        raise fail(f"no database at {settings.db}: pass --db or set MODBOT_DB")
    start = parse_since(since, datetime.now(UTC)) if since else None
    shadow = with_app(db, lambda m: m.reports.shadow(operator(platform, server), start))
    if as_json:
        typer.echo(json.dumps(shadow.to_json(), ensure_ascii=False, indent=1))
    else:
        from adapters.console.render import shown_line

        # Its lines name the rule ids the model cited: not our words.
        typer.echo("\n".join(shown_line(line) for line in shadow.text().splitlines()))
