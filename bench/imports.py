"""Import time of `modbot --help` and `modbot check`, this tree against a baseline tree, in the same run.

Usage: python bench/imports.py [--baseline /path/to/other/checkout] [--runs 7]

Each run starts a fresh interpreter with `-X importtime` in the given tree and sums the
cumulative time of its top-level imports (interpreter start-up excluded). `check` is timed
up to the model call: what the command imports before it sends anything. Prints min,
median and max per tree, and the ratio of this tree's median to the baseline's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

HELP = (
    "import sys; sys.argv = ['modbot', '--help']\n"
    "from adapters.console.cli import main\n"
    "try: main()\n"
    "except SystemExit: pass"
)
# What `modbot check` imports before it calls the model: the CLI with its command modules,
# then what the command itself loads.
CHECK = (
    "from adapters.console import cli, policy_admin_cli, policy_eng_cli, run_cli, workflow_cli\n"
    "import bot.settings, bot.policy_format, bot.policy_library, bot.classifier, bot.domain\n"
    "import adapters.console.render\n"
    "from bot.bootstrap import build_classifier, configure_logging\n"
    # configure_logging loads the structured logging (since ops' merge) when it runs.
    "try: import bot.observability.logs\n"
    "except ImportError: pass"
)


def import_seconds(tree: Path, code: str) -> float:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    total_us = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = line[len("import time:") :].split("|")
        if not name.startswith(" ") or name.startswith("  "):
            continue  # only top-level imports: their cumulative time includes their children
        total_us += int(cumulative_us)
    return total_us / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout (e.g. main) to compare against")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    trees = {"this tree": HERE}
    if args.baseline:
        trees = {"baseline": args.baseline.resolve(), **trees}
    medians: dict[tuple[str, str], float] = {}
    for label, code in (("--help", HELP), ("check", CHECK)):
        for name, tree in trees.items():
            times = sorted(import_seconds(tree, code) for _ in range(args.runs))
            medians[(label, name)] = statistics.median(times)
            print(
                f"modbot {label:6} {name:9}: min {times[0]:.3f} s, median {statistics.median(times):.3f} s,"
                f" max {times[-1]:.3f} s"
            )
        if args.baseline:
            ratio = medians[(label, "this tree")] / medians[(label, "baseline")]
            print(f"modbot {label:6} this tree / baseline (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
