"""PDF helpers on pikepdf (qpdf): check an upload is a sound PDF, count pages, merge.

qpdf repairs damaged files quietly by default: a PDF cut off in transfer
opens, its cross-reference table rebuilt, and the pages whose objects were
lost come out blank. Scans are refused instead of repaired: files are
opened with ``attempt_recovery=False`` (a file that needs its xref rebuilt
raises), and any warning qpdf raised while reading, or any problem its
``--check`` finds, refuses the file. Messages are plain sentences: qpdf's
own text names the stream object it read (``<_io.BytesIO object at 0x…>``)
or a storage path, so it is never shown as it is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, BinaryIO

import pikepdf

PDF_MAGIC = b"%PDF-"
_CHUNK = 1024 * 1024

PdfSource = str | Path | BinaryIO


class NotAPdf(ValueError):
    """The file is not a PDF we accept; the message is a plain sentence."""


def sha256_stream(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def _qpdf_reason(text: str) -> str:
    """qpdf's reason without what it names first (``stream <_io.BytesIO object
    at 0x…> (offset 12): can't find startxref``), or "" when what is left still
    looks like an internal (a repr, an address, a path)."""
    lines = text.strip().splitlines()
    reason = lines[0].rsplit(": ", 1)[-1].strip() if lines else ""
    if not reason or re.search(r"[<>\\/]|0x[0-9a-f]", reason, re.IGNORECASE):
        return ""
    return reason.rstrip(".")


def _damaged(reason: str = "", *, label: str = "The PDF") -> NotAPdf:
    because = f" ({reason})" if reason else ""
    return NotAPdf(
        f"{label} is damaged or incomplete{because}: it would need repair, so it was refused. "
        "Scan it again."
    )


def _open_strict(source: PdfSource, *, label: str = "The PDF") -> pikepdf.Pdf:
    """Open without qpdf's silent repair: ``NotAPdf`` unless the file reads cleanly."""
    try:
        pdf = pikepdf.open(source, attempt_recovery=False)
    except pikepdf.PasswordError:
        raise NotAPdf(f"{label} is encrypted; scan it without a password.") from None
    except pikepdf.PdfError as exc:
        raise _damaged(_qpdf_reason(str(exc)), label=label) from None
    warnings = pdf.get_warnings()
    if warnings:
        pdf.close()
        raise _damaged(_qpdf_reason(warnings[0]), label=label)
    return pdf


def _syntax_problems(pdf: pikepdf.Pdf) -> list[str]:
    # pikepdf 10 renamed Pdf.check() (qpdf --check) to check_pdf_syntax().
    check = getattr(pdf, "check_pdf_syntax", None) or pdf.check
    return list(check())


def _has_content(page: pikepdf.Page) -> bool:
    contents = page.obj.get("/Contents")
    if contents is None:
        return False
    streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
    return any(
        isinstance(stream, pikepdf.Stream) and stream.read_bytes().strip() for stream in streams
    )


def _empty_pages_message(empty: list[int], pages: int) -> str:
    if len(empty) == 1:
        return f"Page {empty[0]} of {pages} of the PDF has no content; scan it again."
    listed = ", ".join(str(number) for number in empty[:10]) + (" …" if len(empty) > 10 else "")
    return f"Pages {listed} of {pages} of the PDF have no content; scan it again."


def count_pages(stream: BinaryIO) -> int:
    """The page count of a sound PDF with content on every page, or ``NotAPdf``
    naming the problem: not a PDF, encrypted, damaged (it would need repair),
    no pages, or a page without content (a blank page in a scan is still an
    image: a page that draws nothing is what a damaged file leaves)."""
    stream.seek(0)
    head = stream.read(1024)
    stream.seek(0)
    if PDF_MAGIC not in head:
        raise NotAPdf("The file is not a PDF (no %PDF- header).")
    try:
        pdf = _open_strict(stream)
        with pdf:
            try:
                problems = _syntax_problems(pdf)
            except pikepdf.PdfError as exc:
                raise _damaged(_qpdf_reason(str(exc))) from None
            pages = len(pdf.pages)
            if pages < 1:
                raise NotAPdf("The PDF has no pages.")
            if problems:
                raise _damaged(_qpdf_reason(problems[0].split(":", 1)[-1]))
            empty = [number for number, page in enumerate(pdf.pages, 1) if not _has_content(page)]
            if empty:
                raise NotAPdf(_empty_pages_message(empty, pages))
    finally:
        stream.seek(0)
    return pages


def merge_pdfs(sources: Iterable[tuple[str, PdfSource]], output: str | Path | BinaryIO) -> int:
    """Append every page of ``sources`` (label, file) in order into one PDF and
    return its page count. A source that would need repair is ``NotAPdf``
    naming its label: it was sound when uploaded, so the copy on disk changed."""
    merged = pikepdf.new()
    opened: list[pikepdf.Pdf] = []
    try:
        for label, source in sources:
            try:
                pdf = _open_strict(source, label=label)
            except FileNotFoundError:
                raise NotAPdf(f"{label} is missing from storage.") from None
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
