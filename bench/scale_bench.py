"""Benchmark: Bureau at 100,000 rows per table, on PostgreSQL (issue 11).

Builds the data set in bulk (``INSERT … SELECT … FROM generate_series``: the
rows are made inside PostgreSQL, no services, distinct timestamps), starts gunicorn
(config/gunicorn.conf.py, 2 workers) and 1, 2 and 4 ``qcluster`` processes
itself, and prints each row of the issue's table as one line: the figure,
its target, and ``met`` or ``missed``, with exactly-once counts for the
worker runs. Rows:

- outbox: 5,000 events committed in one transaction (5,000 Tenant saves, one
  rule firing create_alert on each), drained by 1, 2 and 4 clusters:
  executions/s; statements/event counted in this process with
  ``connection.execute_wrapper`` over 1,000 more events run by the same
  worker code (the clusters are other processes);
- the Knox poll: 100,000 documents in flight, 10,000 approved in a real
  simulator process (approvals/knox/launcher.py): seconds and Knox calls,
  the CPU each process spent, and the same cycle with nothing changed;
- p95 of ``GET /api/v1/alerts/mine/`` (100,000 alerts for one user), the
  pending-actions list first page and deep page (a cursor near the end;
  the page-number last page too), and deep cursor pages of operations/runs,
  automation/executions and automation/deliveries;
- the django-q2 ORM broker: no-op tasks/s with 1 and 2 clusters.

    make scale-bench                                   # a throwaway PostgreSQL
    DATABASE_URL=postgres://… .venv/bin/python bench/scale_bench.py

Without a PostgreSQL DATABASE_URL it runs itself under scripts/with-postgres.sh.
With one, it adds its rows (tagged ``scale``) and removes them at the end
(which takes a few minutes more).
Not a test: it prints figures and exits 0 unless something breaks; a missed
target is a figure, not a failure. Takes about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import math
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]

if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    os.environ["SCALE_BENCH_THROWAWAY"] = "1"  # nothing to clean up afterwards
    os.execvp(
        "bash", ["bash", str(ROOT / "scripts" / "with-postgres.sh"), sys.executable, *sys.argv]
    )

os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-" + "x" * 40)
os.environ["DEBUG"] = "false"  # no query log in this process either
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")

import bootstrap  # noqa: E402 - bench/bootstrap.py: configures Django, migrates

bootstrap.setup(temporary_media=True)

import logging  # noqa: E402

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django_q.models import OrmQ, Task  # noqa: E402
from django_q.tasks import async_task  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from approvals.choices import ActionStatus, KnoxStatus  # noqa: E402
from approvals.knox.client import get_knox_client  # noqa: E402
from approvals.knox.launcher import free_port, start_simulator  # noqa: E402
from approvals.models import ApprovalLog, PendingAction  # noqa: E402
from approvals.registry import any_requester, register_action_handler  # noqa: E402
from approvals.services import payload_sha256, pending_actions_poll  # noqa: E402
from automation import events  # noqa: E402
from automation.engine import outbox_process  # noqa: E402
from automation.entities import entities_sync, invalidate_watch_index  # noqa: E402
from automation.models import (  # noqa: E402
    Alert,
    AlertRecipient,
    AutomationEvent,
    AutomationExecution,
    AutomationRule,
    Entity,
    IdempotencyRecord,
    NotificationDelivery,
    TriggerType,
)
from automation.services import rule_save  # noqa: E402
from operations.choices import MemberRole, RunOutcome, RunStatus  # noqa: E402
from operations.models import OperationRun, Tenant, Workspace, WorkspaceMembership  # noqa: E402
from tests.live_server import start_manage, stop_process, wait_until  # noqa: E402

logging.getLogger("django-q").setLevel(logging.WARNING)  # one line per enqueued task

BATCH = 5_000
TAG = "scale"
LIST_RULE = "scale bench: listed executions"
OUTBOX_RULE = "scale bench: outbox"


# --- reporting -------------------------------------------------------------------------------
def row(what: str, figure: str, target: str, met: bool, extra: str = "") -> None:
    line = f"{what}: {figure}  target {target}  {'met' if met else 'missed'}"
    print(line + (f"  ({extra})" if extra else ""), flush=True)


def note(text: str) -> None:
    print(f"  · {text}", file=sys.stderr, flush=True)


class CpuBusy:
    """The share of this machine's CPU time that was busy (all processes:
    the clusters, PostgreSQL, this one) between start and stop, from
    /proc/stat; ``None`` where there is no /proc."""

    def __init__(self):
        self.start = self._sample()
        self.busy: float | None = None

    @staticmethod
    def _sample() -> tuple[int, int] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    def stop(self) -> str:
        end = self._sample()
        if self.start is None or end is None or end[0] == self.start[0]:
            return "CPU busy: unknown"
        total, idle = end[0] - self.start[0], end[1] - self.start[1]
        self.busy = 1 - idle / total
        return f"CPU busy {self.busy:.0%} of {os.cpu_count()} cores"


def cpu_seconds(*, pids=(), name: str | None = None) -> float | None:
    """CPU time (user + system) used so far by the processes ``pids`` and by
    every process called ``name`` (e.g. ``postgres``: the server and its
    backends), from /proc; None where there is no /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    try:
        candidates = [Path(f"/proc/{pid}") for pid in pids]
        if name:
            candidates += [path for path in Path("/proc").iterdir() if path.name.isdigit()]
        for path in set(candidates):
            try:
                stat = (path / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            if path.name in {str(pid) for pid in pids} or comm == name:
                fields = stat[stat.rindex(")") + 2 :].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
                found = True
    except OSError:
        return None
    return total / tick if found else None


@contextmanager
def counting():
    counter = bootstrap.StatementCounter()
    with connection.execute_wrapper(counter):
        yield counter


# --- the data set ----------------------------------------------------------------------------
def insert_select(model, source: str, values: dict[str, str], params: dict | None = None) -> int:
    """``INSERT INTO <model's table> (…) SELECT … FROM <source>``: the rows are
    made by PostgreSQL itself (no Python object per row, no service). ``values``
    maps field names to SQL expressions over ``source``; every other NOT NULL
    column gets the field's default (``now()`` for auto_now fields). Named
    placeholders (``%(user)s``) take ``params``."""
    columns, expressions, args = [], [], dict(params or {})
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.name in values:
            expression = values[field.name]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            expression = "now()"
        elif field.null and not field.has_default():
            continue
        elif field.get_default() is not None:  # a default, or "" for a blank text field
            expression = f"%(default_{field.name})s"
            args[f"default_{field.name}"] = field.get_db_prep_save(field.get_default(), connection)
        else:
            raise ValueError(f"{model.__name__}.{field.name}: NOT NULL and no value given")
        columns.append(f'"{field.column}"')
        expressions.append(expression)
    sql = (
        f'INSERT INTO "{model._meta.db_table}" ({", ".join(columns)}) '
        f"SELECT {', '.join(expressions)} FROM {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.rowcount


def _newest_last(step_ms: int = 7) -> str:
    """Distinct timestamps, row ``g`` = n the newest: ``step_ms`` apart."""
    return f"now() - (%(n)s - g) * interval '{step_ms} ms'"


def build(n: int):
    """One superuser (staff, member of the workspace) who is the recipient of
    ``n`` alerts and sees ``n`` pending actions, runs, executions and deliveries."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username="scale-bench", defaults={"is_staff": True, "is_superuser": True}
    )
    workspace, _ = Workspace.objects.get_or_create(slug="scale-bench", defaults={"name": "Scale"})
    WorkspaceMembership.objects.get_or_create(
        workspace=workspace, user=user, defaults={"role": MemberRole.ADMIN}
    )
    token, _ = Token.objects.get_or_create(user=user)
    rule = rule_save(
        actor=user,
        name=LIST_RULE,
        entity=Entity.objects.get(model_label="operations.Tenant"),
        trigger_type=TriggerType.objects.get(name="on_update"),
        trigger_conditions={
            "field_conditions": [{"field_name": "name", "operator": "equals", "value": "∅"}]
        },
        actions=[],
    )
    series = f"generate_series(1, {int(n)}) AS g"
    started = time.perf_counter()
    with transaction.atomic():
        insert_select(
            Alert,
            series,
            {
                "alert_type": "%(tag)s",
                "title": "'Scale alert ' || g",
                "message": "'A wide row: ' || repeat('x', 300)",
                "context": "jsonb_build_object('i', g, 'tenant', 'tenant ' || mod(g, 97))",
                "source_entity_name": "'operations.Tenant'",
                "source_entity_id": "g::text",
                "created_at": _newest_last(),
            },
            {"tag": TAG, "n": n},
        )
        insert_select(
            AlertRecipient,
            '"automation_alert" AS a WHERE a.alert_type = %(tag)s',
            {"alert": "a.id", "recipient_type": "'user'", "user": "%(user)s"},
            {"user": user.pk, "tag": TAG},
        )
        ap_inf_id = f"'{TAG}' || lpad(g::text, 27, '0')"
        insert_select(
            ApprovalLog,
            series,
            {
                "ap_inf_id": ap_inf_id,
                "knox_status": str(int(KnoxStatus.IN_PROGRESS)),
                "subject": "'Scale ' || g",
                "contents": "'<p>scale</p>'",
                "contents_sha256": "repeat('0', 64)",
                # payload_sha256({"i": g}): sha256 of its canonical JSON
                "payload_sha256": """encode(sha256(convert_to('{"i":' || g || '}', 'UTF8')), 'hex')""",
                "approvers": """'[{"ep_id": "EP-S", "seq": 1, "role": 1}]'::jsonb""",
                "submitted_by": "%(user)s",
                "submitted_at": "now()",
                "created_at": _newest_last(),
            },
            {"user": user.pk, "n": n},
        )
        insert_select(
            PendingAction,
            '"approvals_approvallog" AS l WHERE l.ap_inf_id LIKE %(prefix)s',
            {
                "ap_inf_id": "l.ap_inf_id",
                "approval_log": "l.id",
                "action_type": "'scale.noop'",
                "action_payload": "jsonb_build_object('i', substr(l.ap_inf_id, 6)::bigint)",
                "status": "%(status)s",
                "created_by": "%(user)s",
                "created_at": "l.created_at",
            },
            {"status": ActionStatus.PENDING, "user": user.pk, "prefix": f"{TAG}%"},
        )
        insert_select(
            OperationRun,
            series,
            {
                "workspace": "%(workspace)s",
                "user": "%(user)s",
                "initiator_name": "'scale bench'",
                "type": "'ops.reconcile_runs'",
                "status": "%(status)s",
                "outcome": "%(outcome)s",
                "run_identity_hash": "lpad(to_hex(g), 64, '0')",
                "summary_counts": "jsonb_build_object('checked', mod(g, 10))",
                "started_at": "now()",
                "completed_at": "now()",
                "created_at": _newest_last(),
            },
            {
                "workspace": workspace.pk,
                "user": user.pk,
                "status": RunStatus.COMPLETED,
                "outcome": RunOutcome.SUCCEEDED,
                "n": n,
            },
        )
        insert_select(
            AutomationExecution,
            series,
            {
                "rule": "%(rule)s",
                "rule_version": "1",
                "entity_type": "'operations.Tenant'",
                "object_pk": "g::text",
                "trigger_data": "jsonb_build_object('event', 'on_update', 'i', g)",
                "actions_executed": """'[{"action": "alert", "status": "success"}]'::jsonb""",
                "status": "'success'",
                "execution_time_ms": "3",
                "executed_at": _newest_last(),
            },
            {"rule": rule.pk, "n": n},
        )
        insert_select(
            NotificationDelivery,
            series,
            {
                "notification_id": "gen_random_uuid()",
                "rule": "%(rule)s",
                "recipient": "%(user_text)s",
                "recipient_user": "%(user)s",
                "channel": "'in_app'",
                "status": "'sent'",
                "payload": "jsonb_build_object('subject', 'Scale ' || g, 'message', repeat('x', 200))",
                "sent_at": "now()",
                "created_at": _newest_last(),
            },
            {"rule": rule.pk, "user_text": str(user.pk), "user": user.pk, "n": n},
        )
    sample = PendingAction.objects.select_related("approval_log").get(ap_inf_id=f"{TAG}{n:027d}")
    assert payload_sha256(sample.action_payload) == sample.approval_log.payload_sha256
    # A production database's tables are vacuumed (visibility maps set, so
    # counts can read indexes alone); and an autovacuum of the fresh rows must
    # not run during a measurement.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    note(f"data set: {n} rows per table in {time.perf_counter() - started:.0f} s")
    return user, token.key, rule


def clean() -> None:
    """Everything this benchmark adds, and nothing else."""
    rules = AutomationRule.objects.filter(name__in=[LIST_RULE, OUTBOX_RULE])
    alerts = Alert.objects.filter(alert_type__startswith=TAG)
    with transaction.atomic():
        IdempotencyRecord.objects.filter(execution__rule__in=rules).delete()
        AlertRecipient.objects.filter(alert__in=alerts).delete()
        alerts.delete()
        NotificationDelivery.objects.filter(rule__in=rules).delete()
        AutomationExecution.objects.filter(rule__in=rules).delete()
        _bench_events().delete()
        for rule in rules:
            rule.actions.all().delete()
        rules.delete()
        PendingAction.objects.filter(ap_inf_id__startswith=TAG).delete()
        ApprovalLog.objects.filter(ap_inf_id__startswith=TAG).delete()
        OperationRun.objects.filter(workspace__slug="scale-bench").delete()
        Tenant.objects.filter(workspace__slug="scale-bench").delete()


# --- processes -------------------------------------------------------------------------------
PROCESS_ENV = {"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false", "LOG_LEVEL": "INFO"}


def start_gunicorn() -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="scale-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    env = {
        **os.environ,
        **PROCESS_ENV,
        "LOG_LEVEL": "WARNING",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESS_LOG": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    process.log_path = Path(log.name)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    if not wait_until(answers, timeout=60, process=process):
        raise SystemExit(f"gunicorn did not answer: {stop_process(process)[-2000:]}")
    return process, base


@contextmanager
def clusters(count: int):
    """``count`` real ``manage.py qcluster`` processes (Q_WORKERS as configured),
    on this database, each ready before the block starts."""
    processes = [start_manage("qcluster", **PROCESS_ENV) for _ in range(count)]
    try:
        for process in processes:
            ready = wait_until(
                lambda p=process: "running." in p.log_path.read_text(errors="replace"),
                timeout=90,
                process=process,
            )
            if not ready:
                raise SystemExit(f"a qcluster did not start: {stop_process(process)[-2000:]}")
        yield processes
    finally:
        for process in processes:
            stop_process(process)


# --- web -------------------------------------------------------------------------------------
def _cursor_at(queryset, depth: int) -> str:
    """The cursor a ``next`` link gives for the page starting ``depth`` rows in."""
    field = queryset.query.order_by[0].lstrip("-")
    position = queryset.values_list(field, flat=True)[depth - 1]
    return base64.b64encode(urlencode({"p": str(position)}).encode()).decode()


def p95(session: requests.Session, url: str, *, requests_: int) -> tuple[float, float]:
    for _ in range(5):  # warm the workers' connections and caches
        session.get(url, timeout=60).raise_for_status()
    latencies = []
    for _ in range(requests_):
        started = time.perf_counter()
        response = session.get(url, timeout=60)
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return quantiles[94] * 1000, quantiles[49] * 1000


def bench_lists(user, token: str, rule, n: int, requests_: int) -> None:
    gunicorn, base = start_gunicorn()
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    deep = n - 50
    alerts = Alert.objects.filter(alert_type=TAG).order_by("-created_at", "-id")
    pending = PendingAction.objects.filter(ap_inf_id__startswith=TAG).order_by("-created_at", "-id")
    runs = OperationRun.objects.filter(workspace__slug="scale-bench").order_by("-created_at", "-id")
    executions = AutomationExecution.objects.filter(rule=rule).order_by("-executed_at", "-id")
    deliveries = NotificationDelivery.objects.filter(rule=rule).order_by("-created_at", "-id")
    lists = [
        ("GET /healthz (the floor: no database, no serializer)", "/healthz"),
        ("GET alerts/mine/ first page (cursor)", "/api/v1/alerts/mine/?cursor="),
        ("GET alerts/mine/ first page (?page=, with count)", "/api/v1/alerts/mine/"),
        (
            f"GET alerts/mine/ deep page (cursor, row {deep:,})",
            f"/api/v1/alerts/mine/?cursor={_cursor_at(alerts, deep)}",
        ),
        (
            "GET approvals/pending-actions/ first page (cursor)",
            "/api/v1/approvals/pending-actions/?cursor=",
        ),
        (
            "GET approvals/pending-actions/ first page (?page=, with count)",
            "/api/v1/approvals/pending-actions/",
        ),
        (
            f"GET approvals/pending-actions/ deep page (cursor, row {deep:,})",
            f"/api/v1/approvals/pending-actions/?cursor={_cursor_at(pending, deep)}",
        ),
        (
            f"GET approvals/pending-actions/ last page (?page={math.ceil(n / 50)})",
            f"/api/v1/approvals/pending-actions/?page={math.ceil(n / 50)}",
        ),
        (
            "GET operations/runs/ deep page (cursor)",
            f"/api/v1/operations/runs/?cursor={_cursor_at(runs, deep)}",
        ),
        (
            "GET automation/executions/ deep page (cursor)",
            f"/api/v1/automation/executions/?cursor={_cursor_at(executions, deep)}",
        ),
        (
            "GET automation/deliveries/ deep page (cursor)",
            f"/api/v1/automation/deliveries/?cursor={_cursor_at(deliveries, deep)}",
        ),
    ]
    try:
        for what, path in lists:
            high, median = p95(session, base + path, requests_=requests_)
            if path == "/healthz":
                print(f"{what}: p95 {high:.0f} ms, p50 {median:.0f} ms", flush=True)
                continue
            row(
                what,
                f"p95 {high:.0f} ms",
                "p95 ≤ 50 ms",
                high <= 50,
                f"p50 {median:.0f} ms; {in_process(token, path)}",
            )
    finally:
        stop_process(gunicorn)


class SqlClock:
    """Statements and the time spent in them (``connection.execute_wrapper``)."""

    def __init__(self):
        self.statements, self.seconds = 0, 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.statements += 1


def in_process(token: str, path: str, rounds: int = 10) -> str:
    """The profile of one request, served in this process (Django's test
    client, no HTTP): the median total and how much of it the SQL took."""
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    totals, sql, statements = [], [], 0
    for _ in range(rounds):
        clock = SqlClock()
        with connection.execute_wrapper(clock):
            started = time.perf_counter()
            response = client.get(path)
            totals.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content[:300]
        sql.append(clock.seconds)
        statements = clock.statements
    return (
        f"in process: {statistics.median(totals) * 1000:.0f} ms, "
        f"of which SQL {statistics.median(sql) * 1000:.1f} ms in {statements} statements"
    )


# --- Knox poll -------------------------------------------------------------------------------
def bench_poll(n: int, approved: int, profile: bool = False) -> None:
    executed = []
    register_action_handler(
        "scale.noop",
        lambda payload, pending_action: executed.append(pending_action.pk) or {"ok": True},
        authorize=any_requester,
    )
    ids = list(
        PendingAction.objects.filter(ap_inf_id__startswith=TAG)
        .order_by("pk")
        .values_list("ap_inf_id", flat=True)
    )
    with tempfile.TemporaryDirectory() as tmp:
        simulator = start_simulator(Path(tmp) / "documents.json")
        try:
            settings.KNOX_BASE_URL = simulator.url
            settings.KNOX_SUBMIT_GRACE_SECONDS = 0
            simulator.reset()
            # One request (the launcher's helper allows 5 s; 100k documents take longer).
            requests.post(
                f"{simulator.url}/sim/documents/bulk",
                json={
                    "documents": [{"apInfId": ap, "subject": "Scale", "status": 1} for ap in ids]
                },
                timeout=600,
            ).raise_for_status()
            # The calls alone, no database: what the simulator and HTTP cost.
            client = get_knox_client()
            size = client.config.batch_size
            started = time.perf_counter()
            for _chunk, reports in client.statuses_each(
                ids[i : i + size] for i in range(0, len(ids), size)
            ):
                if isinstance(reports, Exception):
                    raise reports
            calls_alone = time.perf_counter() - started
            # The same poll with nothing to settle: the first stamps every
            # document's last check (100,000 rows written); the second, within
            # KNOX_CHECK_STAMP_SECONDS, writes none: what asking Knox costs alone.
            started = time.perf_counter()
            pending_actions_poll()
            stamping = time.perf_counter() - started
            started = time.perf_counter()
            pending_actions_poll()
            asking = time.perf_counter() - started
            requests.post(
                f"{simulator.url}/sim/documents/decide",
                json={"apInfIds": ids[:approved], "status": 2},
                timeout=600,
            ).raise_for_status()
            before = simulator.calls().get("statuses", 0)
            profiler = cProfile.Profile() if profile else None
            cpu = CpuBusy()
            cpu_self = time.process_time()
            cpu_simulator = cpu_seconds(pids=[simulator.process.pid])
            cpu_postgres = cpu_seconds(name="postgres")
            with counting() as statements:
                started = time.perf_counter()
                if profiler:
                    profiler.enable()
                counts = pending_actions_poll()
                if profiler:
                    profiler.disable()
                wall = time.perf_counter() - started
            cpu_self = time.process_time() - cpu_self
            busy = cpu.stop()
            cpu_simulator = _spent(cpu_simulator, cpu_seconds(pids=[simulator.process.pid]))
            cpu_postgres = _spent(cpu_postgres, cpu_seconds(name="postgres"))
            calls = simulator.calls().get("statuses", 0) - before
        finally:
            simulator.stop()
    done = PendingAction.objects.filter(
        ap_inf_id__startswith=TAG, status=ActionStatus.EXECUTED
    ).count()
    batch = settings.KNOX_STATUS_BATCH_SIZE
    exactly_once = len(executed) == len(set(executed)) == done == approved
    row(
        f"Knox poll, {n:,} in flight, none changed (the nearest setup: asking without settling)",
        f"{asking:.1f} s",
        "≤ 5 s",
        asking <= 5,
        f"{stamping:.1f} s for the first such cycle, which stamps every document's last check",
    )
    row(
        f"Knox poll, {n:,} in flight, {approved:,} approved",
        f"{wall:.1f} s, {calls} calls",
        f"≤ 5 s, calls = ⌈N/{batch}⌉ = {math.ceil(n / batch)}",
        wall <= 5 and calls == math.ceil(n / batch),
        f"{statements.count} statements; executed {done}, handler ran {len(executed)} times "
        f"({len(set(executed))} actions): {'exactly once' if exactly_once else 'NOT exactly once'}"
        f"; counts {counts}; {busy}; {_cpu_floor(wall, cpu_self, cpu_simulator, cpu_postgres)}"
        "; the Knox calls alone"
        f" (no database): {calls_alone:.1f} s; the same poll with"
        f" nothing approved: {asking:.1f} s ({stamping:.1f} s when it also stamps every"
        f" document's last check), so settling {approved:,} approved ≈"
        f" {max(wall - asking, 0):.1f} s",
    )
    print(
        f"  · the poll's database time by statement kind ({approved:,} approved):", file=sys.stderr
    )
    print(statements.report(), file=sys.stderr)
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _cpu_floor(wall: float, own: float, simulator: float | None, postgres: float | None) -> str:
    """What the poll cost the machine's CPUs, process by process, and the
    shortest time that CPU work could take however it were spread over this
    machine's cores."""
    if simulator is None or postgres is None:
        return f"this process's CPU {own:.1f} s"
    total = own + simulator + postgres
    cores = os.cpu_count() or 1
    return (
        f"CPU used: this process {own:.1f} s, the Knox simulator {simulator:.1f} s, PostgreSQL"
        f" {postgres:.1f} s = {total:.1f} CPU-seconds, so at least {total / cores:.1f} s on"
        f" {cores} cores however it is spread ({wall:.1f} s now)"
    )


# --- outbox ----------------------------------------------------------------------------------
def _outbox_rule(user):
    return rule_save(
        actor=user,
        name=OUTBOX_RULE,
        entity=Entity.objects.get(model_label="operations.Tenant"),
        trigger_type=TriggerType.objects.get(name="on_update"),
        trigger_conditions={
            "field_conditions": [{"field_name": "name", "operator": "contains", "value": "fire"}]
        },
        actions=[
            {
                "name": "alert",
                "action_type": "create_alert",
                "execution_order": 1,
                "action_config": {
                    "alert_type": f"{TAG}-outbox",
                    "title": "Tenant {{name}}",
                    "message": "{{id}} changed from {{old.name}}",
                    "recipients": {"users": [user.pk]},
                },
            }
        ],
    )


def _fire(tenants, round_: int) -> None:
    for tenant in tenants:
        tenant.name = f"fire {round_} {tenant.pk}"
        tenant.save()


def _outbox_reset(rule) -> None:
    AlertRecipient.objects.filter(alert__alert_type=f"{TAG}-outbox").delete()
    IdempotencyRecord.objects.filter(execution__rule=rule).delete()
    Alert.objects.filter(alert_type=f"{TAG}-outbox").delete()
    AutomationExecution.objects.filter(rule=rule).delete()
    _bench_events().delete()
    OrmQ.objects.all().delete()


def _bench_events():
    tenants = Tenant.objects.filter(workspace__slug="scale-bench").values_list("pk", flat=True)
    return AutomationEvent.objects.filter(
        entity__model_label="operations.Tenant", object_pk__in=[str(pk) for pk in tenants]
    )


def bench_outbox(user, events_n: int, cluster_counts: list[int], statements_n: int) -> None:
    workspace = Workspace.objects.get(slug="scale-bench")
    Tenant.objects.bulk_create(
        [Tenant(workspace=workspace, name=f"scale tenant {i}") for i in range(events_n)]
    )
    tenants = list(Tenant.objects.filter(workspace=workspace).order_by("pk"))
    rule = _outbox_rule(user)
    invalidate_watch_index()
    rates = {}
    for round_, count in enumerate(cluster_counts, start=1):
        _outbox_reset(rule)
        with clusters(count):
            with transaction.atomic():
                _fire(tenants, round_)
            committed = time.perf_counter()
            cpu = CpuBusy()

            def drained() -> bool:
                return not AutomationEvent.objects.filter(status="pending").exists()

            wait_until(drained, timeout=600, interval=0.05)
            elapsed = time.perf_counter() - committed
            busy = cpu.stop()
        executions = AutomationExecution.objects.filter(rule=rule)
        made = executions.count()
        by_event = executions.values("event").distinct().count()
        alerts = Alert.objects.filter(alert_type=f"{TAG}-outbox").count()
        recipients = AlertRecipient.objects.filter(alert__alert_type=f"{TAG}-outbox").count()
        failed = AutomationEvent.objects.exclude(status__in=["processed", "pending"]).count()
        once = made == by_event == alerts == recipients == events_n
        rates[count] = made / elapsed
        target_met = (
            count != 2 or (rates[2] >= 1000 and rates[2] >= 1.6 * rates.get(1, math.inf))
        ) and (count == 2 or rates[count] >= 1000)
        row(
            f"outbox, {events_n:,} events in one transaction, {count} qcluster",
            f"{rates[count]:.0f} executions/s",
            "≥ 1,000/s with 2 clusters and ≥ 1.6× 1 cluster"
            + (f" (×{rates[count] / rates[1]:.2f})" if 1 in rates and count > 1 else ""),
            target_met,
            f"{made} executions for {by_event} events, {alerts} alerts, {recipients} recipients, "
            f"{failed} events not processed: {'exactly once' if once else 'NOT exactly once'}; "
            f"{elapsed:.1f} s, {busy}",
        )
    _outbox_reset(rule)
    # Statements per event: the same worker code, in this process, where they can be counted.
    original = events.request_outbox_processing
    events.request_outbox_processing = lambda: None
    try:
        with transaction.atomic():
            _fire(tenants[:statements_n], 99)
    finally:
        events.request_outbox_processing = original
    with counting() as statements:
        counts = outbox_process(max_batches=10**6)
    per_event = statements.count / statements_n
    row(
        f"outbox statements per event ({statements_n:,} events, outbox_process in-process)",
        f"{per_event:.1f} statements/event",
        "≤ 3",
        per_event <= 3,
        f"{statements.count} statements; counts {counts}",
    )
    _outbox_reset(rule)


# --- the ORM broker --------------------------------------------------------------------------
def bench_broker(tasks: int, cluster_counts: list[int]) -> None:
    for count in cluster_counts:
        OrmQ.objects.all().delete()
        Task.objects.all().delete()
        group = f"{TAG}-noop-{count}"
        with clusters(count):
            with transaction.atomic():
                for i in range(tasks):
                    async_task("math.floor", i + 0.5, group=group, task_name=f"{group}-{i}")
            committed = time.perf_counter()
            cpu = CpuBusy()

            def done(group=group) -> bool:
                return Task.objects.filter(group=group).count() >= tasks

            wait_until(done, timeout=600, interval=0.1)
            elapsed = time.perf_counter() - committed
            busy = cpu.stop()
        finished = Task.objects.filter(group=group)
        made, names = finished.count(), finished.values("name").distinct().count()
        once = made == names == tasks and not OrmQ.objects.exists()
        row(
            f"django-q2 ORM broker, {tasks} no-op tasks, {count} qcluster",
            f"{made / elapsed:.0f} tasks/s",
            "do not design around one task per event (figure only)",
            True,
            f"{made} results for {names} tasks: {'exactly once' if once else 'NOT exactly once'}"
            f"; {busy}",
        )
    OrmQ.objects.all().delete()
    Task.objects.filter(group__startswith=f"{TAG}-noop").delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--approved", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--statement-events", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=100, help="per list, after 5 warm-ups")
    parser.add_argument("--tasks", type=int, default=500, help="≤ Q_CLUSTER save_limit (1000)")
    parser.add_argument("--clusters", default="1,2,4")
    parser.add_argument(
        "--only",
        default="lists,poll,outbox,broker",
        help="which parts to run, comma-separated (lists, poll, outbox, broker)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the poll (to stderr)"
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    cluster_counts = [int(c) for c in args.clusters.split(",")]

    started = time.perf_counter()
    load = ", ".join(f"{avg:.1f}" for avg in os.getloadavg())
    print(
        f"database: {bootstrap.describe_database()}; {os.cpu_count()} CPUs, load average {load}",
        flush=True,
    )
    entities_sync()
    invalidate_watch_index()
    clean()
    try:
        user, token, rule = build(args.rows)
        if "lists" in parts:
            bench_lists(user, token, rule, args.rows, args.requests)
        if "poll" in parts:
            bench_poll(args.rows, args.approved, profile=args.profile)
        if "outbox" in parts:
            bench_outbox(user, args.events, cluster_counts, args.statement_events)
        if "broker" in parts:
            bench_broker(args.tasks, [c for c in cluster_counts if c <= 2])
    finally:
        if not os.environ.get("SCALE_BENCH_THROWAWAY"):
            clean()  # a database of yours: this bench's rows out again (a few minutes)
    load = ", ".join(f"{avg:.1f}" for avg in os.getloadavg())
    print(f"total {time.perf_counter() - started:.0f} s; load average {load}", flush=True)


if __name__ == "__main__":
    main()
