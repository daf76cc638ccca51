"""Benchmark: one Knox poll cycle over 10,000 in-flight approvals.

10,000 pending actions are in the database and in a real Knox simulator
process (started here on a free port); 1,000 of them are approved in Knox.
One ``pending_actions_poll()`` cycle then runs, and we print its wall
time, the SQL queries it made, the Knox calls it made, and executions per
second. Targets: the cycle ≤ 5 s, Knox calls = ceil(N / batch size), no
per-row query for the 9,000 unchanged documents.

    python bench/approvals_bench.py                       # SQLite, var/bench.sqlite3
    DATABASE_URL=postgres://… python bench/approvals_bench.py
    make bench                                            # both
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import bootstrap  # noqa: E402 - bench/bootstrap.py: configures Django, migrates

bootstrap.setup(database="bench.sqlite3")

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from approvals.choices import ActionStatus, KnoxStatus  # noqa: E402
from approvals.knox import get_knox_client  # noqa: E402
from approvals.knox.launcher import start_simulator  # noqa: E402
from approvals.models import ApprovalLog, PendingAction  # noqa: E402
from approvals.registry import any_requester, register_action_handler  # noqa: E402
from approvals.services import payload_sha256, pending_actions_poll  # noqa: E402


def seed(n: int, approved: int, url: str) -> list[str]:
    user, _ = get_user_model().objects.get_or_create(username="bench-requester")
    ids = [f"bench{i:027d}" for i in range(n)]
    now = timezone.now()
    PendingAction.objects.filter(ap_inf_id__startswith="bench").delete()
    ApprovalLog.objects.filter(ap_inf_id__startswith="bench").delete()
    logs = ApprovalLog.objects.bulk_create(
        [
            ApprovalLog(
                ap_inf_id=ap,
                knox_status=KnoxStatus.IN_PROGRESS,
                subject=f"Bench {i}",
                contents="<p>bench</p>",
                contents_sha256="0" * 64,
                payload_sha256=payload_sha256({"i": i}),
                approvers=[{"ep_id": "EP-B", "seq": 1, "role": 1}],
                submitted_by=user,
                submitted_at=now,
            )
            for i, ap in enumerate(ids)
        ],
        batch_size=1000,
    )
    PendingAction.objects.bulk_create(
        [
            PendingAction(
                ap_inf_id=log.ap_inf_id,
                approval_log=log,
                action_type="bench.noop",
                action_payload={"i": i},
                status=ActionStatus.PENDING,
                created_by=user,
            )
            for i, log in enumerate(logs)
        ],
        batch_size=1000,
    )
    requests.post(f"{url}/sim/reset", json={}, timeout=30)
    requests.post(
        f"{url}/sim/documents/bulk",
        json={"documents": [{"apInfId": ap, "subject": "Bench", "status": 1} for ap in ids]},
        timeout=60,
    ).raise_for_status()
    requests.post(
        f"{url}/sim/documents/decide", json={"apInfIds": ids[:approved], "status": 2}, timeout=60
    )
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--approved", type=int, default=1_000)
    args = parser.parse_args()

    register_action_handler(
        "bench.noop", lambda payload, pending_action: {"ok": True}, authorize=any_requester
    )
    with tempfile.TemporaryDirectory() as tmp:
        simulator = start_simulator(Path(tmp) / "documents.json")
        url = simulator.url
        try:
            settings.KNOX_BASE_URL = url
            settings.KNOX_SUBMIT_GRACE_SECONDS = 0
            seed(args.documents, args.approved, url)
            client = get_knox_client()
            calls_before = client.calls
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                counts = pending_actions_poll()
            wall = time.perf_counter() - started
            knox_calls = client.calls - calls_before
            executed = PendingAction.objects.filter(
                ap_inf_id__startswith="bench", status=ActionStatus.EXECUTED
            ).count()
        finally:
            simulator.stop()
            PendingAction.objects.filter(ap_inf_id__startswith="bench").delete()
            ApprovalLog.objects.filter(ap_inf_id__startswith="bench").delete()

    batch = settings.KNOX_STATUS_BATCH_SIZE
    expected_calls = math.ceil(args.documents / batch)
    per_changed = (len(queries) - 1) / max(args.approved, 1)
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    print(f"documents in flight: {args.documents}, approved in Knox: {args.approved}")
    print(f"counts: {counts}")
    print(f"cycle wall time: {wall:.2f}s  (target ≤ 5 s: {'met' if wall <= 5 else 'NOT met'})")
    print(
        f"Knox calls: {knox_calls}  (ceil({args.documents}/{batch}) = {expected_calls}: "
        f"{'met' if knox_calls == expected_calls else 'NOT met'})"
    )
    print(
        f"SQL queries: {len(queries)} as Django counts them (≈{per_changed:.1f} per approved document, "
        f"an executemany counting once; unchanged documents: one UPDATE per 500)"
    )
    print(f"executions: {executed}, {executed / wall:.0f} per second of cycle")


if __name__ == "__main__":
    main()
