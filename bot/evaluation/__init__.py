"""Policy engineering: lint, labelled-case tests, dataset evaluation and shadow evaluation."""

from bot.evaluation.datasets import (
    Dataset,
    DatasetError,
    DatasetKind,
    Label,
    LabelledText,
    dataset_kind,
    label_row,
    load_cases,
    load_dataset,
    parse_labels,
)
from bot.evaluation.evaluate import (
    CaseOutcome,
    EvaluationInterrupted,
    PolicyTestReport,
    Progress,
    run_evaluation,
    run_policy_test,
)
from bot.evaluation.lint import LintReport, PolicyLint, cases_path_for, lint_policy_files
from bot.evaluation.metrics import ConfusionMatrix, percentile
from bot.evaluation.render import evaluation_lines, policy_test_lines
from bot.evaluation.results import (
    EvaluationReport,
    ResultsFile,
    ResultsMismatch,
    RunMetrics,
    RunReport,
    RunSpec,
)
from bot.evaluation.runner import Judgement, judge_texts
from bot.evaluation.shadow import ShadowReport, shadow_report

__all__ = [
    "CaseOutcome",
    "ConfusionMatrix",
    "Dataset",
    "DatasetError",
    "DatasetKind",
    "EvaluationInterrupted",
    "EvaluationReport",
    "Judgement",
    "Label",
    "LabelledText",
    "LintReport",
    "PolicyLint",
    "PolicyTestReport",
    "Progress",
    "ResultsFile",
    "ResultsMismatch",
    "RunMetrics",
    "RunReport",
    "RunSpec",
    "ShadowReport",
    "cases_path_for",
    "dataset_kind",
    "evaluation_lines",
    "judge_texts",
    "label_row",
    "lint_policy_files",
    "load_cases",
    "load_dataset",
    "parse_labels",
    "percentile",
    "policy_test_lines",
    "run_evaluation",
    "run_policy_test",
    "shadow_report",
]
