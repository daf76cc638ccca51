"""What every benchmark does before it measures: find the project, configure
Django from the environment (a SQLite file under var/ unless DATABASE_URL names
another database), and migrate. A script in bench/ starts with::

    import bootstrap  # bench/ is the script's own folder, so this is this file

    bootstrap.setup(database="bench.sqlite3")

and imports Django and Bureau after it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_media: tempfile.TemporaryDirectory | None = None


def setup(*, database: str = "bench.sqlite3", temporary_media: bool = False, migrate: bool = True):
    """Configure and set up Django for a benchmark; ``temporary_media`` points
    MEDIA_ROOT at a folder removed when the process ends."""
    global _media
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / database}")
    (ROOT / "var").mkdir(exist_ok=True)
    if temporary_media:
        _media = tempfile.TemporaryDirectory(prefix="bureau-bench-media-")
        os.environ["MEDIA_ROOT"] = _media.name

    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def describe_database() -> str:
    """``postgresql (bureau)``: which database the figures are from."""
    from django.db import connection

    return f"{connection.vendor} ({connection.settings_dict['NAME']})"


class StatementCounter:
    """Counts the SQL statements a connection runs, however many: pass it to
    ``connection.execute_wrapper`` (Django's query log stops at 9,000 and
    needs DEBUG). An ``executemany`` counts once: one round trip for the batch."""

    def __init__(self) -> None:
        self.count = 0
        # (verb, table) -> [statements, seconds]: where the database time goes.
        self.by_kind: dict[tuple[str, str], list] = {}

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = self.by_kind.setdefault(_kind(sql), [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def report(self, top: int = 12) -> str:
        """The statement kinds that took the most time, one line each."""
        rows = sorted(self.by_kind.items(), key=lambda item: -item[1][1])[:top]
        return "\n".join(
            f"    {seconds * 1000:9.0f} ms  {count:6d} × {verb} {table}"
            for (verb, table), (count, seconds) in rows
        )


def _kind(sql: str) -> tuple[str, str]:
    """``("UPDATE", "approvals_approvallog")`` from a statement's text."""
    words = sql.replace('"', " ").split()
    verb = words[0].upper() if words else "?"
    marker = {"UPDATE": "UPDATE", "INSERT": "INTO", "DELETE": "FROM", "SELECT": "FROM"}.get(verb)
    upper = [word.upper() for word in words]
    if marker and marker in upper[:200]:
        index = upper.index(marker)
        table = words[index + 1] if marker != "UPDATE" else words[1]
    else:
        table = ""
    if verb == "SELECT" and "FOR" in upper and "UPDATE" in upper[upper.index("FOR") :]:
        verb = "SELECT … FOR UPDATE"
    return verb, table


def clear_automation_history() -> None:
    """Remove every rule and what rules left behind (events, executions,
    alerts, idempotency records): the automation benchmarks start empty."""
    from django.db import transaction

    from automation.models import (
        Alert,
        AlertRecipient,
        AutomationEvent,
        AutomationExecution,
        AutomationRule,
        IdempotencyRecord,
        RuleAction,
        RuleDependency,
    )

    with transaction.atomic():
        IdempotencyRecord.objects.all().delete()
        AlertRecipient.objects.all().delete()
        Alert.objects.all().delete()
        AutomationEvent.objects.update(caused_by=None)
        AutomationExecution.objects.all().delete()
        AutomationEvent.objects.all().delete()
        RuleAction.objects.all().delete()
        RuleDependency.objects.all().delete()
        AutomationRule.objects.all().delete()
