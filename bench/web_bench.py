"""Benchmark: the production web role over real HTTP, with and without the pool.

gunicorn (config/gunicorn.conf.py, DEBUG off) is started against PostgreSQL
once per database-connection setting, and driven over the loopback with:

(a) agent uploads: one agent, as on a scanner host, each batch a
    ``batches/start/`` then a multipart ``batches/`` upload through
    ``scanning.agent.client.AgentClient`` (one-page PDFs drawn beforehand);
(b) a REST list: ``GET /api/v1/operations/runs/`` (a page of 50 of 200 runs)
    with a user token, from --clients threads at once.

Settings compared, interleaved for --rounds rounds (best round kept, as the
machine is shared): ``persistent`` (Bureau's default, CONN_MAX_AGE=600: each
thread keeps its connection), ``pool`` (DB_POOL=true, min 2 / max = threads
per worker process), ``reconnect`` (CONN_MAX_AGE=0, no pool: Django's own
default). Prints requests/s and p50/p95 latency for each, and the ratios
pool/persistent and pool/reconnect. The load generator runs on the same
machine as the server and the database.

    bash scripts/with-postgres.sh .venv/bin/python bench/web_bench.py
    DATABASE_URL=postgres://… python bench/web_bench.py
    make bench                       # runs it on the throwaway PostgreSQL

Not a test: it prints figures and exits 0 unless something breaks (and says
so and exits 0 without PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    print("web bench: needs PostgreSQL (DATABASE_URL=postgres://…); skipped on SQLite.")
    print("  bash scripts/with-postgres.sh .venv/bin/python bench/web_bench.py")
    sys.exit(0)
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-" + "x" * 40)

import bootstrap  # noqa: E402 - bench/bootstrap.py: configures Django, migrates

bootstrap.setup(temporary_media=True)
ROOT = bootstrap.ROOT

import requests  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from approvals.knox.launcher import free_port  # noqa: E402
from operations.choices import MemberRole, RunOutcome  # noqa: E402
from operations.models import OperationRun, Workspace, WorkspaceMembership  # noqa: E402
from operations.services import complete_run, mark_run_running, start_run  # noqa: E402
from scanning import services as scanning  # noqa: E402
from scanning.agent.client import AgentClient  # noqa: E402
from scanning.agent.scanners import SimulatedScanner  # noqa: E402
from scanning.choices import ACTIVE_STATUSES, ScanJobStatus  # noqa: E402
from scanning.models import ScanAgent, ScanJob  # noqa: E402
from scanning.services import scan_agent_create  # noqa: E402

RUNS_IN_LIST = 200


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1]


class Server:
    def __init__(self, label: str, extra_env: dict[str, str], *, workers: int, threads: int):
        self.label = label
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_ACCESS_LOG": "",
            "LOG_LEVEL": "WARNING",
            **extra_env,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "config/gunicorn.conf.py",
                "config.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"gunicorn ({label}) exited: {self.log.read()[-2000:]}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"gunicorn ({label}) did not answer within 60 s")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --- data ------------------------------------------------------------------------------------
def _user_token() -> str:
    user, _ = get_user_model().objects.get_or_create(username="bench-web")
    workspace, _ = Workspace.objects.get_or_create(slug="bench-web", defaults={"name": "Bench"})
    WorkspaceMembership.objects.get_or_create(
        workspace=workspace, user=user, defaults={"role": MemberRole.VIEWER}
    )
    have = OperationRun.objects.filter(workspace=workspace).count()
    for _ in range(RUNS_IN_LIST - have):
        run, _ = start_run(type="ops.reconcile_runs", workspace=workspace)
        mark_run_running(run)
        complete_run(run, outcome=RunOutcome.SUCCEEDED, counts={"checked": 1})
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def _claimed_job(agent: ScanAgent) -> ScanJob:
    for status in (*ACTIVE_STATUSES, ScanJobStatus.QUEUED):
        ScanJob.objects.filter(status=status).update(status=ScanJobStatus.CANCELED)
    job = scanning.scan_job_create(title="Benchmark: web uploads")
    scanning.scan_job_queue(job_id=job.pk)
    claimed = scanning.scan_job_claim(agent=agent)
    assert claimed is not None and claimed.pk == job.pk
    return claimed


# --- load ------------------------------------------------------------------------------------
def uploads(server: Server, agent: ScanAgent, token: str, pdfs: list[bytes]) -> Sample:
    job = _claimed_job(agent)
    client = AgentClient(server.base, token, timeout=30)
    sample = Sample()
    started = time.perf_counter()
    for seq, pdf in enumerate(pdfs, start=1):
        t0 = time.perf_counter()
        client.start_batch(job.pk)
        t1 = time.perf_counter()
        client.upload_batch(job.pk, seq, pdf)
        t2 = time.perf_counter()
        sample.latencies += [t1 - t0, t2 - t1]
    sample.elapsed = time.perf_counter() - started
    client.close()
    return sample


def rest_list(server: Server, token: str, *, total: int, clients: int) -> Sample:
    url = f"{server.base}/api/v1/operations/runs/"
    per_client = total // clients
    sample = Sample()
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []

    def client() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        mine = []
        barrier.wait()
        for _ in range(per_client):
            t0 = time.perf_counter()
            response = session.get(url, timeout=30)
            mine.append(time.perf_counter() - t0)
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")
        session.close()
        with lock:
            sample.latencies += mine

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    sample.elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"REST list failed: {errors[0]}")
    return sample


def _warm_up(server: Server, token: str) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    for _ in range(40):
        session.get(f"{server.base}/api/v1/operations/runs/", timeout=30)
    session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100, help="batches per round")
    parser.add_argument("--requests", type=int, default=800, help="list requests per round")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    token = _user_token()
    ScanAgent.objects.filter(name="bench-web-agent").delete()
    issued = scan_agent_create(name="bench-web-agent")
    scanner = SimulatedScanner(pages_per_batch=1)
    pdfs = [
        scanner.scan(job={"id": 1, "title": "Bench", "settings": {}}, batch_seq=seq)
        for seq in range(1, args.uploads + 1)
    ]
    settings_compared = {
        "persistent": {"DB_POOL": "false", "DB_CONN_MAX_AGE": "600"},
        "pool": {
            "DB_POOL": "true",
            "DB_POOL_MIN_SIZE": "2",
            "DB_POOL_MAX_SIZE": str(args.threads),
        },
        "reconnect": {"DB_POOL": "false", "DB_CONN_MAX_AGE": "0"},
    }
    best: dict[tuple[str, str], Sample] = {}
    for round_no in range(1, args.rounds + 1):
        for label, extra in settings_compared.items():
            server = Server(label, extra, workers=args.workers, threads=args.threads)
            try:
                _warm_up(server, token)
                results = {
                    "uploads": uploads(server, issued.agent, issued.token, pdfs),
                    "list": rest_list(server, token, total=args.requests, clients=args.clients),
                }
            finally:
                server.stop()
            for kind, sample in results.items():
                key = (kind, label)
                if key not in best or sample.rate > best[key].rate:
                    best[key] = sample
            print(f"  round {round_no} {label}: done", file=sys.stderr)

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(
        f"web bench on PostgreSQL {version}: gunicorn {args.workers} workers × {args.threads} "
        f"threads, best of {args.rounds} rounds, load generator on the same machine"
    )
    titles = {
        "uploads": f"agent uploads, 1 agent, {args.uploads} batches (start + upload)",
        "list": f"REST list GET /api/v1/operations/runs/, {args.clients} clients",
    }
    for kind, title in titles.items():
        print(title)
        for label in settings_compared:
            sample = best[(kind, label)]
            print(
                f"  {label:<11} {sample.rate:8.1f} req/s   p50 {sample.percentile(50) * 1000:6.1f} ms"
                f"   p95 {sample.percentile(95) * 1000:6.1f} ms"
            )
        pool = best[(kind, "pool")]
        for other in ("persistent", "reconnect"):
            base = best[(kind, other)]
            print(
                f"  pool / {other:<10}: req/s ×{pool.rate / base.rate:.2f}, "
                f"p50 ×{pool.percentile(50) / base.percentile(50):.2f}, "
                f"p95 ×{pool.percentile(95) / base.percentile(95):.2f}"
            )
    ScanAgent.objects.filter(pk=issued.agent.pk).update(is_active=False)


if __name__ == "__main__":
    main()
