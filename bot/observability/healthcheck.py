"""The container's HEALTHCHECK: `python -m bot.observability.healthcheck`, exit 0 when healthy.

With `MODBOT_HTTP_PORT` set (the image sets it), it asks the bot's own /healthz: the
model reachable, the database writable, each adapter connected. That path uses the
standard library only, so a probe every 30 s costs a few milliseconds rather than the
bot's imports. Without the endpoint there is nothing to ask, so it checks what it can
from outside the bot: that the database file takes a write (bot.store.health).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 4.0


def _endpoint_url(environ: dict[str, str]) -> str | None:
    port = environ.get("MODBOT_HTTP_PORT", "").strip()
    if not port:
        return None
    host = environ.get("MODBOT_HTTP_HOST", "127.0.0.1").strip() or "127.0.0.1"
    # An endpoint bound to every interface is reached on loopback from inside the container.
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def check_endpoint(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return True, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:  # 503: the body says which check fails
        return False, exc.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url} did not answer: {exc}"


def check_database(path: str) -> tuple[bool, str]:
    from bot.store.health import file_database_problem  # the store's imports, only on this path

    problem = file_database_problem(Path(path), timeout_seconds=TIMEOUT_SECONDS)
    return problem is None, problem or f"database {path} is writable"


def main(environ: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if environ is None else environ
    url = _endpoint_url(env)
    if url is not None:
        ok, detail = check_endpoint(url)
    else:
        ok, detail = check_database(env.get("MODBOT_DB", "modbot.db"))
    print(detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
