"""Benchmark: scan assembly and batch uploads.

1. Assembly: 50 batches × 20 pages (1,000 real pages drawn by the reference
   agent's simulated scanner) merged through Bureau's assembly step
   (``scanning.tasks.assemble_scan_job``: the tracked run, the job lock,
   pikepdf merge in batch_seq order with a deterministic /ID, sha256, storing
   the PDF through Django's storage, the state change and its audit row)
   against a plain pikepdf merge of the same files, in the same run.
   Best of --rounds for each; prints both and the ratio (target ≤ 1.5).
2. Uploads: 200 one-page batches through the agent API (each a
   ``batches/start/`` then a multipart ``batches/`` upload), in process with
   Django's test client (no network, no HTTP server): uploads/s and requests/s.

    python bench/scanning_bench.py                       # SQLite, var/bench.sqlite3
    DATABASE_URL=postgres://… python bench/scanning_bench.py

Not a test: it prints figures and exits 0 unless something breaks.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import bootstrap  # noqa: E402 - bench/bootstrap.py: configures Django, migrates

bootstrap.setup(database="bench.sqlite3", temporary_media=True)

import pikepdf  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_q.models import OrmQ  # noqa: E402

from scanning import services  # noqa: E402
from scanning.agent.scanners import SimulatedScanner  # noqa: E402
from scanning.choices import ACTIVE_STATUSES, ScanJobStatus  # noqa: E402
from scanning.models import ScanAgent, ScanJob  # noqa: E402
from scanning.services import scan_agent_create  # noqa: E402
from scanning.tasks import assemble_scan_job  # noqa: E402


def _free_the_scanner() -> None:
    for job in ScanJob.objects.filter(status__in=ACTIVE_STATUSES):
        ScanJob.objects.filter(pk=job.pk).update(status=ScanJobStatus.CANCELED)


def _claimed_job(agent: ScanAgent, title: str) -> ScanJob:
    _free_the_scanner()
    ScanJob.objects.filter(status=ScanJobStatus.QUEUED).update(status=ScanJobStatus.CANCELED)
    job = services.scan_job_create(title=title)
    services.scan_job_queue(job_id=job.pk)
    claimed = services.scan_job_claim(agent=agent)
    assert claimed is not None and claimed.pk == job.pk
    return claimed


def assembly(agent: ScanAgent, *, batches: int, pages: int, rounds: int) -> tuple[float, float]:
    scanner = SimulatedScanner(pages_per_batch=pages)
    job = _claimed_job(agent, "Benchmark: assembly")
    for seq in range(1, batches + 1):
        services.scan_job_start_batch(job_id=job.pk, agent=agent)
        data = scanner.scan(
            job={"id": job.pk, "title": job.title, "settings": job.settings}, batch_seq=seq
        )
        services.scan_batch_upload(
            job_id=job.pk,
            batch_seq=seq,
            upload=SimpleUploadedFile(f"b{seq}.pdf", data, content_type="application/pdf"),
            agent=agent,
        )
    services.scan_job_finish(job_id=job.pk, agent=agent)
    OrmQ.objects.all().delete()  # the task finish queued: we run the step ourselves
    paths = [batch.file.path for batch in job.batches.order_by("batch_seq")]

    bureau_times, plain_times = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for round_no in range(rounds):
            # Bureau: the task body the cluster runs
            ScanJob.objects.filter(pk=job.pk).update(status=ScanJobStatus.ASSEMBLING, file="")
            started = time.perf_counter()
            run = assemble_scan_job(job.pk, initiator_name="bench")
            bureau_times.append(time.perf_counter() - started)
            assert run.context.get("job_status") == ScanJobStatus.PREVIEW, run.failure_summary
            assert run.summary_counts["pages"] == batches * pages

            # Plain pikepdf: open the same files, append every page, save
            started = time.perf_counter()
            merged = pikepdf.new()
            sources = [pikepdf.open(path) for path in paths]
            for source in sources:
                merged.pages.extend(source.pages)
            merged.save(Path(scratch) / f"plain-{round_no}.pdf")
            for source in sources:
                source.close()
            merged.close()
            plain_times.append(time.perf_counter() - started)
    _free_the_scanner()
    return min(bureau_times), min(plain_times)


def uploads(agent_token: str, agent: ScanAgent, *, count: int) -> tuple[float, int]:
    job = _claimed_job(agent, "Benchmark: uploads")
    scanner = SimulatedScanner(pages_per_batch=1)
    payloads = [
        scanner.scan(
            job={"id": job.pk, "title": job.title, "settings": job.settings}, batch_seq=seq
        )
        for seq in range(1, count + 1)
    ]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {agent_token}", HTTP_HOST="127.0.0.1")
    base = f"/api/v1/scanning/agent/jobs/{job.pk}/batches/"
    requests_made = 0
    started = time.perf_counter()
    for seq, data in enumerate(payloads, start=1):
        response = client.post(f"{base}start/")
        assert response.status_code == 200, response.content
        response = client.post(
            base,
            {
                "batch_seq": seq,
                "file": SimpleUploadedFile(f"b{seq}.pdf", data, content_type="application/pdf"),
            },
        )
        assert response.status_code == 201, response.content
        requests_made += 2
    elapsed = time.perf_counter() - started
    _free_the_scanner()
    return elapsed, requests_made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    ScanAgent.objects.filter(name="bench-agent").delete()
    issued = scan_agent_create(name="bench-agent")
    agent = issued.agent
    vendor = connection.vendor

    bureau_s, plain_s = assembly(agent, batches=args.batches, pages=args.pages, rounds=args.rounds)
    total_pages = args.batches * args.pages
    print(
        f"scanning bench on {vendor} (pikepdf {pikepdf.__version__}, qpdf {pikepdf.__libqpdf_version__})"
    )
    print(
        f"assembly of {args.batches} batches × {args.pages} pages = {total_pages} pages, best of {args.rounds}:"
    )
    print(
        f"  Bureau assembly step : {bureau_s * 1000:8.1f} ms  ({total_pages / bureau_s:,.0f} pages/s)"
    )
    print(
        f"  plain pikepdf merge  : {plain_s * 1000:8.1f} ms  ({total_pages / plain_s:,.0f} pages/s)"
    )
    print(f"  ratio                : {bureau_s / plain_s:8.2f}  (target ≤ 1.5)")

    elapsed, requests_made = uploads(issued.token, agent, count=args.uploads)
    print(
        f"agent API uploads, in process with Django's test client (no HTTP server): "
        f"{args.uploads} one-page batches in {elapsed:.2f}s"
    )
    print(f"  {args.uploads / elapsed:8.1f} uploads/s (each: batches/start/ + multipart batches/)")
    print(f"  {requests_made / elapsed:8.1f} requests/s")
    ScanAgent.objects.filter(pk=agent.pk).update(is_active=False)


if __name__ == "__main__":
    main()
