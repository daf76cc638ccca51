"""Real PDFs for the tests, drawn by the reference agent's simulated scanner,
and a way to read back which batch/page each page of a merged PDF came from."""

from __future__ import annotations

import io
import re

import pikepdf
from django.core.files.uploadedfile import SimpleUploadedFile

from scanning.agent.scanners import SimulatedScanner


def scanned_pdf(
    *, job_id: int = 1, title: str = "Test scan", batch_seq: int = 1, pages: int = 2
) -> bytes:
    job = {
        "id": job_id,
        "title": title,
        "settings": {"mode": "gray", "resolution": 300, "source": "adf"},
    }
    return SimulatedScanner(pages_per_batch=pages).scan(job=job, batch_seq=batch_seq)


def upload(data: bytes, name: str = "batch.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/pdf")


_LABEL = re.compile(rb"batch (\d+), page (\d+) of")


def page_labels(data_or_path) -> list[tuple[int, int]]:
    """``[(batch_seq, page), …]`` for every page, in order."""
    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    with pikepdf.open(source) as pdf:
        labels = []
        for page in pdf.pages:
            match = _LABEL.search(page.Contents.read_bytes())
            labels.append((int(match[1]), int(match[2])) if match else None)
        return labels


def page_texts(data: bytes) -> list[bytes]:
    """Each page's decoded content stream."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [page.Contents.read_bytes() for page in pdf.pages]
