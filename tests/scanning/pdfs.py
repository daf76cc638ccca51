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


def truncated_pdf(fraction: float = 2 / 3, **kwargs) -> bytes:
    """The first ``fraction`` of a valid scan, as a transfer cut off midway
    leaves it: qpdf would rebuild it and lose pages' content."""
    data = scanned_pdf(**kwargs)
    return data[: int(len(data) * fraction)]


def blank_pages_pdf(pages: int = 2) -> bytes:
    """A well-formed PDF whose pages draw nothing (no content streams)."""
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def pdf_with_a_blank_page() -> bytes:
    """A scan of two pages with a page that draws nothing between them."""
    blank = pikepdf.new()
    blank.add_blank_page()
    with pikepdf.open(io.BytesIO(scanned_pdf(pages=2))) as pdf:
        pdf.pages.insert(1, blank.pages[0])
        out = io.BytesIO()
        pdf.save(out)
    return out.getvalue()


def corrupted_stream_pdf() -> bytes:
    """A scan whose first content stream was overwritten with zeros in place
    (same length, so the cross-reference table still matches)."""
    data = scanned_pdf()
    start = data.index(b"stream\n") + len(b"stream\n")
    return data[:start] + b"\0" * 24 + data[start + 24 :]


def plain_sentence(message: str) -> bool:
    """A message for people: no object reprs, addresses or paths."""
    return (
        message[:1].isupper()
        and message.rstrip().endswith(".")
        and not any(mark in message for mark in ("<", ">", "0x", "BytesIO", "/tmp", "\\"))
    )
