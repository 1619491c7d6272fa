"""Command groups shared by several CLI modules (each module adds its own commands)."""

from __future__ import annotations

import typer

policy_app = typer.Typer(help="Write, check, version and roll out policies.", no_args_is_help=True)
