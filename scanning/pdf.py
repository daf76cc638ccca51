"""PDF helpers on pikepdf (qpdf): check an upload is a PDF, count pages, merge."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, BinaryIO

import pikepdf

PDF_MAGIC = b"%PDF-"
_CHUNK = 1024 * 1024


class NotAPdf(ValueError):
    pass


def sha256_stream(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def count_pages(stream: BinaryIO) -> int:
    """The page count of a PDF, or ``NotAPdf``. qpdf repairs damaged files
    quietly, so the header is checked first and a PDF without pages is refused."""
    stream.seek(0)
    head = stream.read(1024)
    stream.seek(0)
    if PDF_MAGIC not in head:
        raise NotAPdf("The file is not a PDF (no %PDF- header).")
    try:
        with pikepdf.open(stream) as pdf:
            pages = len(pdf.pages)
    except pikepdf.PdfError as exc:
        raise NotAPdf(f"The PDF cannot be read: {exc}") from None
    finally:
        stream.seek(0)
    if pages < 1:
        raise NotAPdf("The PDF has no pages.")
    return pages


def merge_pdfs(sources: Iterable[str | Path | BinaryIO], output: str | Path | BinaryIO) -> int:
    """Append every page of ``sources`` in order into one PDF; return its page count."""
    merged = pikepdf.new()
    opened: list[pikepdf.Pdf] = []
    try:
        for source in sources:
            pdf = pikepdf.open(source)
            opened.append(pdf)
            merged.pages.extend(pdf.pages)
        pages = len(merged.pages)
        # Same batches → same bytes (qpdf's default /ID mixes in the time), so
        # the sha256 identifies the content and a re-assembly commits idempotently.
        merged.save(output, deterministic_id=True)
        return pages
    finally:
        for pdf in opened:
            pdf.close()
        merged.close()
