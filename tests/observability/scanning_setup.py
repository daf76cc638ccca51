"""A scan job with one uploaded batch, ready to be finished by its agent."""

from __future__ import annotations

from dataclasses import dataclass

from scanning import services
from scanning.models import ScanAgent, ScanJob
from scanning.services import scan_agent_create
from tests.scanning.pdfs import scanned_pdf, upload


@dataclass
class ReadyJob:
    job: ScanJob
    agent: ScanAgent
    token: str


def job_ready_to_finish(title: str = "Observed scan") -> ReadyJob:
    issued = scan_agent_create(name=f"observer-{title.lower().replace(' ', '-')}")
    job = services.scan_job_create(title=title)
    services.scan_job_queue(job_id=job.pk)
    claimed = services.scan_job_claim(agent=issued.agent)
    assert claimed is not None and claimed.pk == job.pk
    services.scan_job_start_batch(job_id=job.pk, agent=issued.agent)
    services.scan_batch_upload(
        job_id=job.pk,
        batch_seq=1,
        upload=upload(scanned_pdf(job_id=job.pk, title=title)),
        agent=issued.agent,
    )
    job.refresh_from_db()
    return ReadyJob(job=job, agent=issued.agent, token=issued.token)
