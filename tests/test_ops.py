"""Deployment files: compose, Dockerfile, lock file, .env.example, dashboard, alerts, Kubernetes, backups.

Some checks need tools from outside PyPI's test extra: Debian's docker-compose (v1) and
promtool (package prometheus), hadolint and kubernetes-validate (the `ops` extra), and the
sqlite3 command. Locally a missing tool skips its test; CI sets MODBOT_REQUIRE_OPS_TOOLS=1
(.ci/run installs them all), and there a missing tool fails.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from packaging.requirements import Requirement
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from bot.domain import utcnow
from bot.observability.metrics import ModbotMetrics, ModelCallResult
from bot.observability.server import ObservabilityServer
from bot.settings import ModbotSettings
from bot.store._migrations import available_migrations, current_version
from bot.store.backup import BackupError, backup_database
from bot.store.ports import QueueBacklog
from bot.store.sqlite import SqliteStore
from tests.fakes.ollama_fake import FakeOllama
from tests.helpers import REPO, make_message, run_modbot

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.cpu.yml")


def ops_tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        if os.environ.get("MODBOT_REQUIRE_OPS_TOOLS") == "1":
            pytest.fail(f"{name} is required (MODBOT_REQUIRE_OPS_TOOLS=1) but not installed; see .ci/run")
        pytest.skip(
            f"{name} is not installed (apt-get install docker-compose prometheus sqlite3; pip install -e '.[ops]')"
        )
    return found


def ops_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("MODBOT_REQUIRE_OPS_TOOLS") == "1":
            pytest.fail(
                f"{name} is required here (MODBOT_REQUIRE_OPS_TOOLS=1) but not installed: pip install -e '.[ops]'"
            )
        pytest.skip(f"{name} is not installed: pip install -e '.[ops]'")


def run(*cmd: str, cwd: Path = REPO, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300, check=False)


def compose(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
    return loaded


def default_of(value: str) -> str:
    """`${VAR:-default}` -> default; a plain value stays as it is."""
    match = re.fullmatch(r"\$\{(\w+):-(.*)\}", value)
    return match.group(2) if match else value


# ---------------------------------------------------------------- compose


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """The compose files beside a .env made from .env.example, as an admin would set them up."""
    for name in (*COMPOSE_FILES, ".env.example"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    return tmp_path


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_files_are_valid(name: str, project_dir: Path) -> None:
    result = run(ops_tool("docker-compose"), "-f", name, "config", cwd=project_dir)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == {"ollama", "model", "modbot"}
    bot = config["services"]["modbot"]["environment"]
    assert bot["MODBOT_MODEL"] == "gpt-oss-safeguard:20b" and bot["OLLAMA_HOST"] == "http://ollama:11434"


def test_compose_interpolates_the_model_tag_from_env(project_dir: Path) -> None:
    env = (project_dir / ".env").read_text(encoding="utf-8")
    (project_dir / ".env").write_text(
        env.replace("MODBOT_MODEL=gpt-oss-safeguard:20b", "MODBOT_MODEL=gpt-oss-safeguard:120b"), encoding="utf-8"
    )
    result = run(ops_tool("docker-compose"), "config", cwd=project_dir)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["model"]["entrypoint"] == ["ollama", "pull", "gpt-oss-safeguard:120b"]
    assert services["modbot"]["environment"]["MODBOT_MODEL"] == "gpt-oss-safeguard:120b"


def test_the_gpu_file_reserves_the_gpu_and_the_cpu_file_differs_only_where_it_must() -> None:
    gpu, cpu = compose("docker-compose.yml"), compose("docker-compose.cpu.yml")
    [device] = gpu["services"]["ollama"]["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    assert "deploy" not in cpu["services"]["ollama"]
    # Everything else is the same file, but for the CPU's smaller defaults and its warning.
    del gpu["services"]["ollama"]["deploy"]
    for config in (gpu, cpu):
        config["services"]["ollama"]["environment"].pop("OLLAMA_NUM_PARALLEL")
        config["services"]["modbot"]["environment"].pop("MODBOT_MODEL_CONCURRENCY")
        config["services"]["model"].pop("entrypoint")
        config["services"]["model"]["environment"].pop("MODBOT_MODEL", None)
    cpu["services"]["modbot"]["environment"].pop("MODBOT_MODEL_TIMEOUT")
    assert gpu == cpu
    assert "WARNING" in (REPO / "docker-compose.cpu.yml").read_text(encoding="utf-8").split("services:")[0]


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_bot_keeps_one_request_more_than_ollama_has_slots(name: str) -> None:
    services = compose(name)["services"]
    ollama, bot = services["ollama"]["environment"], services["modbot"]["environment"]
    slots = int(default_of(ollama["OLLAMA_NUM_PARALLEL"]))
    assert int(default_of(bot["MODBOT_MODEL_CONCURRENCY"])) == slots + 1
    # Ollama loads the model with the context the bot asks for, so no request reloads it.
    assert default_of(ollama["OLLAMA_CONTEXT_LENGTH"]) == default_of(bot["MODBOT_NUM_CTX"])
    assert int(default_of(bot["MODBOT_NUM_CTX"])) == ModbotSettings.model_fields["num_ctx"].default
    # Loaded for good, on both sides: the bot's keep_alive would override the server's.
    assert ollama["OLLAMA_KEEP_ALIVE"] == "-1" and default_of(bot["MODBOT_KEEP_ALIVE"]) == "-1m"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_model_is_pulled_before_the_bot_starts_and_lives_in_a_volume(name: str) -> None:
    config = compose(name)
    services = config["services"]
    assert services["ollama"]["healthcheck"]["test"] == ["CMD", "ollama", "list"]
    assert services["model"]["depends_on"] == {"ollama": {"condition": "service_healthy"}}
    assert services["model"]["restart"] == "no"
    assert "${MODBOT_MODEL:-gpt-oss-safeguard:20b}" in json.dumps(services["model"])
    assert services["modbot"]["depends_on"] == {"model": {"condition": "service_completed_successfully"}}
    assert "ollama-models:/root/.ollama" in services["ollama"]["volumes"]
    assert "modbot-data:/data" in services["modbot"]["volumes"]
    assert set(config["volumes"]) == {"ollama-models", "modbot-data"}
    assert services["modbot"]["environment"]["MODBOT_HTTP_PORT"] == "9464"
    assert all(port.startswith("127.0.0.1:") for port in services["modbot"]["ports"])  # never public by default
    # Months of logs must not fill the disk.
    assert all(s["logging"]["options"]["max-size"] for s in services.values())


# ---------------------------------------------------------------- .env.example


def env_example() -> dict[str, str]:
    """Every KEY=value line of .env.example, commented out or not."""
    found: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#? ?([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def settings_classes() -> Iterator[type[BaseSettings]]:
    """The process settings of the core and of each adapter that declares some."""
    modules = ["bot.settings"] + [
        f"adapters.{p.parent.name}.config" for p in sorted((REPO / "adapters").glob("*/config.py"))
    ]
    for name in modules:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == name:
                yield value


def variable_names(cls: type[BaseSettings]) -> Iterator[tuple[str, set[str]]]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            yield field_name, {str(choice) for choice in alias.choices}
        elif isinstance(alias, str):
            yield field_name, {alias}
        else:
            yield field_name, {(prefix + field_name).upper()}


def test_env_example_documents_every_setting() -> None:
    documented = env_example()
    missing = [
        f"{cls.__module__}.{cls.__name__}.{field} ({' or '.join(sorted(names))})"
        for cls in settings_classes()
        for field, names in variable_names(cls)
        if not names & set(documented)
    ]
    assert not missing, f"settings missing from .env.example: {missing}"
    # And the adapters' variables that the issues name, whether or not their code has landed.
    for name in (
        "DISCORD_TOKEN",
        "DISCORD_TOKEN_FILE",
        "MODBOT_DISCORD_SHARDS",
        "MODBOT_DISCORD_API_BASE",
        "MODBOT_DISCORD_GATEWAY_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_ADMIN_USER_TOKEN",
        "MODBOT_SLACK_PORT",
        "MODBOT_SLACK_API_URL",
        "MODBOT_BACKEND",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "MODBOT_MODEL_ENDPOINTS",
    ):
        assert name in documented, name


def test_env_example_is_a_file_compose_reads_as_meant() -> None:
    for number, line in enumerate((REPO / ".env.example").read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f".env.example:{number}: not KEY=value"
        assert "#" not in value and not value.startswith(('"', "'")), f".env.example:{number}: compose keeps it all"
    # Every active line is a valid setting, and no secret is active in the example.
    active = {k: v for k, v in env_example().items() if f"\n{k}=" in "\n" + (REPO / ".env.example").read_text()}
    assert all(not re.search(r"TOKEN|SECRET|KEY", k) for k in active), active
    ModbotSettings.model_validate({k.removeprefix("MODBOT_").lower(): v for k, v in active.items()})


# ---------------------------------------------------------------- the image


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_the_dockerfile_lints_clean() -> None:
    hadolint = ops_tool("hadolint")
    result = run(hadolint, "--config", ".hadolint.yaml", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lint_would_catch_a_careless_dockerfile(tmp_path: Path) -> None:
    hadolint = ops_tool("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n", encoding="utf-8")
    result = run(hadolint, "--config", str(REPO / ".hadolint.yaml"), str(bad))
    assert result.returncode != 0 and "DL3007" in result.stdout and "DL3013" in result.stdout


def test_the_image_is_slim_non_root_pinned_and_checks_its_health() -> None:
    text = dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    assert "pip install --no-deps --require-hashes --requirement requirements.lock" in text
    final_stage = text.split("\nFROM ")[-1]
    assert not re.search(r"\b(g\+\+|gcc|build-essential|-dev)\b", final_stage)  # no build tools shipped
    assert "COPY --from=build /opt/modbot /opt/modbot" in final_stage
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] == "10001:10001"  # numeric, so Kubernetes can verify runAsNonRoot
    assert 'CMD ["python", "-m", "bot.observability.healthcheck"]' in text
    assert 'VOLUME ["/data"]' in text and "MODBOT_DB=/data/modbot.db" in text
    assert "MODBOT_HTTP_PORT=9464" in text
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".env", "*.db", ".venv", ".git", "tests"} <= set(ignored)
    assert "requirements.lock" not in ignored and "README.md" not in ignored  # the build needs both


def locked_versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked_versions()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in requirements.lock: run ops/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, pyproject.toml asks {requirement.specifier}: run ops/lock.sh"
        )
    text = (REPO / "requirements.lock").read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)


# ---------------------------------------------------------------- dashboard and alerts


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m", "$job": ".+"}


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((REPO / "ops" / "grafana" / "modbot-dashboard.json").read_text(encoding="utf-8"))
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


def as_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable the check does not know: {expr}"
    return expr


def test_the_dashboard_queries_only_metrics_the_bot_exports() -> None:
    metrics = ModbotMetrics()
    families = list(metrics.registry.collect())
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    exported = {f.name + suffix for f in families for suffix in suffixes} | {"up"}  # `up`: Prometheus' own
    queries = dashboard_queries()
    assert len(queries) >= 15
    used = {name for _, expr in queries for name in re.findall(r"\b(modbot_\w+|process_\w+|up)\b(?=\s*[{\[)])", expr)}
    assert used - exported == set(), f"the dashboard queries metrics nobody exports: {used - exported}"
    # Every metric of the contract is on the dashboard.
    names = {f.name for f in families if f.name.startswith("modbot_")}
    assert {n for n in names if not any(n in u for u in used)} == set()


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = ops_tool("promtool")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"modbot:dashboard_check_{i}", "expr": as_promql(expr)}
                    for i, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_would_catch_a_broken_query(tmp_path: Path) -> None:
    promtool = ops_tool("promtool")
    path = tmp_path / "broken.yml"
    rules = {"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (le (rate(modbot_x[5m]))"}]}]}
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    assert run(promtool, "check", "rules", str(path)).returncode != 0


def test_the_alert_rules_are_valid_and_fire_when_they_should() -> None:
    promtool = ops_tool("promtool")
    folder = REPO / "ops" / "prometheus"
    checked = run(promtool, "check", "rules", "alerts.yml", cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", "alerts.test.yml", cwd=folder)
    assert tested.returncode == 0, tested.stdout + tested.stderr


async def test_the_metrics_endpoint_passes_promtools_lint() -> None:
    promtool = ops_tool("promtool")
    metrics = ModbotMetrics()
    metrics.observe_model_call(endpoint="http://ollama:11434", effort="low", result=ModelCallResult.OK, seconds=1.5)

    async def three_waiting() -> QueueBacklog:
        return QueueBacklog(depth=3, oldest_enqueued_at=utcnow())

    metrics.track_queue(three_waiting)
    metrics.track_adapter("discord", lambda: True)
    async with (
        ObservabilityServer(metrics, []) as server,
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}/metrics") as response,
    ):
        body = await response.text()
    result = await asyncio.to_thread(run, promtool, "check", "metrics", stdin=body)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- Kubernetes


def kubernetes_documents() -> list[dict[str, Any]]:
    text = (REPO / "ops" / "kubernetes" / "modbot.yaml").read_text(encoding="utf-8")
    return [d for d in yaml.safe_load_all(text) if d]


def test_the_kubernetes_manifest_validates_against_the_api_schemas() -> None:
    validator = ops_module("kubernetes_validate")
    for document in kubernetes_documents():
        validator.validate(document, "1.30", strict=True)


def test_the_kubernetes_bot_is_one_non_root_replica_probed_on_the_endpoint() -> None:
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in kubernetes_documents()}
    bot = by_name[("Deployment", "modbot")]["spec"]
    assert bot["replicas"] == 1 and bot["strategy"]["type"] == "Recreate"  # one owner of the SQLite file
    pod = bot["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODBOT_HTTP_PORT"] == "9464" and env["MODBOT_HTTP_HOST"] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"]
    ollama = by_name[("Deployment", "ollama")]["spec"]["template"]["spec"]["containers"][0]
    assert ollama["resources"]["limits"]["nvidia.com/gpu"] == 1
    config = by_name[("ConfigMap", "modbot-config")]["data"]
    slots = next(e["value"] for e in ollama["env"] if e["name"] == "OLLAMA_NUM_PARALLEL")
    assert int(config["MODBOT_MODEL_CONCURRENCY"]) == int(slots) + 1
    routes = {r.resource.canonical for r in ObservabilityServer(ModbotMetrics(), []).application().router.routes()}
    assert {"/livez", "/healthz", "/metrics"} <= routes


# ---------------------------------------------------------------- backups


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def snapshot_of(path: Path) -> dict[str, Any]:
    """What a backup holds, read with the standard library as a restore would find it."""
    copied = sqlite3.connect(path)
    try:
        queue = dict(copied.execute("SELECT state, COUNT(*) FROM queue GROUP BY state").fetchall())
        return {
            "integrity": copied.execute("PRAGMA integrity_check").fetchall(),
            "journal_mode": copied.execute("PRAGMA journal_mode").fetchone()[0],
            "queue": queue,
            "cases": copied.execute("SELECT COUNT(*) FROM cases").fetchone()[0],
            # A decision commits with its queue item: a snapshot never holds one without the other.
            "decided_without_case": copied.execute(
                "SELECT COUNT(*) FROM queue q WHERE q.state != 'pending'"
                " AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = q.case_id)"
            ).fetchone()[0],
        }
    finally:
        copied.close()


@pytest.mark.slow
async def test_modbot_backup_while_modbot_run_writes_is_whole_and_restorable(tmp_path: Path) -> None:
    """`modbot backup` from another process while a real `modbot run` decides a stream of messages."""
    live, copy = tmp_path / "modbot.db", tmp_path / "backup.db"
    ollama = await FakeOllama().start()
    env = {**os.environ, "OLLAMA_HOST": ollama.host, "MODBOT_DB": str(live), "MODBOT_LOG_LEVEL": "WARNING"}
    bot: asyncio.subprocess.Process | None = None
    try:
        code, _, err = await run_modbot("policy", "install", "harassment", "-s", "s1", "-a", "o", "--admin", env=env)
        assert code == 0, err
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.console.cli",
            "run",
            cwd=REPO,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert bot.stdin is not None and bot.stdout is not None
        stdin, stdout = bot.stdin, bot.stdout
        decided = 0
        writing = True

        async def keep_sending() -> int:
            sent = 0
            while writing:
                text = "you idiot" if sent % 5 == 0 else f"message number {sent}"
                line = {"id": f"m{sent}", "server": "s1", "channel": "c1", "author": f"u{sent % 7}", "text": text}
                stdin.write((json.dumps(line) + "\n").encode())
                await stdin.drain()
                sent += 1
                await asyncio.sleep(0.002)
            return sent

        async def count_decisions() -> None:
            nonlocal decided
            while await stdout.readline():
                decided += 1

        sender, counter = asyncio.create_task(keep_sending()), asyncio.create_task(count_decisions())

        async def decided_at_least(n: int) -> None:
            while decided < n:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(decided_at_least(50), 60)
        before = decided
        code, out, err = await run_modbot("backup", str(copy), "--json", env=env)
        assert code == 0, err
        after_copy = decided
        await asyncio.wait_for(decided_at_least(after_copy + 20), 60)  # the bot wrote on meanwhile
        writing = False
        sent = await sender
        stdin.close()  # its only source ends: the bot decides what it accepted and stops
        assert await asyncio.wait_for(bot.wait(), 60) == 0
        await counter
    finally:
        if bot is not None and bot.returncode is None:
            bot.kill()
            await bot.wait()
        await ollama.stop()

    report = json.loads(out)
    assert report["target"] == str(copy) and report["bytes"] == copy.stat().st_size
    assert report["schema_version"] == available_migrations()[-1].version
    assert copy.stat().st_mode & 0o777 == 0o600  # it holds message texts
    assert [name for name in names_in(tmp_path) if "partial" in name] == []
    held = snapshot_of(copy)
    assert held["integrity"] == [("ok",)] and held["journal_mode"] == "delete"  # one self-contained file
    assert held["decided_without_case"] == 0
    # A snapshot taken while the bot ran: everything decided before it, nothing sent after it.
    assert before <= held["cases"] <= after_copy < decided == sent
    assert held["cases"] <= sum(held["queue"].values()) <= sent
    restored = await SqliteStore.open(copy)  # a backup is a database the bot opens as it is
    try:
        assert await current_version(restored.connection) == available_migrations()[-1].version
        backlog = await restored.queue_backlog()
        assert backlog.depth == held["queue"].get("pending", 0) + held["queue"].get("acting", 0)
    finally:
        await restored.close()


async def test_a_backup_refuses_what_would_lose_data_and_leaves_no_partial_file(tmp_path: Path) -> None:
    live = tmp_path / "modbot.db"
    store = await SqliteStore.open(live)
    await store.enqueue(make_message("m1"))
    await store.close()
    with pytest.raises(BackupError, match="no database at"):
        await backup_database(tmp_path / "typo.db", tmp_path / "copy.db")
    assert not (tmp_path / "typo.db").exists()  # never created by looking for it
    with pytest.raises(BackupError, match="another file than the database"):
        await backup_database(live, tmp_path / "." / "modbot.db", overwrite=True)
    with pytest.raises(BackupError, match="no directory"):
        await backup_database(live, tmp_path / "missing" / "copy.db")
    existing = tmp_path / "yesterday.db"
    existing.write_bytes(b"yesterday's backup")
    with pytest.raises(BackupError, match="--force"):
        await backup_database(live, existing)
    assert existing.read_bytes() == b"yesterday's backup"
    report = await backup_database(live, existing, overwrite=True)
    assert report.bytes == existing.stat().st_size and snapshot_of(existing)["queue"] == {"pending": 1}
    assert names_in(tmp_path) == ["modbot.db", "yesterday.db"]


async def test_a_damaged_database_gives_no_backup(tmp_path: Path) -> None:
    live = tmp_path / "modbot.db"
    store = await SqliteStore.open(live)
    for i in range(300):
        await store.enqueue(make_message(f"m{i}", "hello " * 20))
    await store.close()
    # Scribble over the middle of the file, where the queue's pages are.
    with live.open("r+b") as handle:
        handle.seek(live.stat().st_size // 2)
        handle.write(b"\xff" * 8192)
    target = tmp_path / "copy.db"
    with pytest.raises(BackupError, match=r"integrity check|malformed|failed"):
        await backup_database(live, target)
    assert not target.exists()
    assert names_in(tmp_path) == ["modbot.db"]
