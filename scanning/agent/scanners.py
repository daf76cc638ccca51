"""Scanners for the reference agent. ``scan()`` returns the PDF bytes of one
batch (one pass of the feeder).

- ``SimulatedScanner`` draws real PDF pages showing the job title and page
  numbers with pikepdf (standard Helvetica: no font file, no extra dependency).
- ``SaneScanner`` runs SANE's ``scanimage`` (PNM output) and wraps the images
  into a PDF with pikepdf.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name

A4_POINTS = (595, 842)


class ScannerError(Exception):
    """The scanner could not produce a batch (jam, no paper, no device)."""


def _pdf_text(text: str) -> bytes:
    """A PDF string literal in WinAnsi: what Helvetica can show; the rest as '?'."""
    encoded = text.encode("cp1252", errors="replace")
    return b"(" + encoded.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


class SimulatedScanner:
    name = "simulated"

    def __init__(self, *, pages_per_batch: int = 3):
        self.pages_per_batch = pages_per_batch

    def scan(self, *, job: dict, batch_seq: int) -> bytes:
        pdf = pikepdf.new()
        font = pdf.make_indirect(
            Dictionary(
                Type=Name.Font,
                Subtype=Name.Type1,
                BaseFont=Name.Helvetica,
                Encoding=Name.WinAnsiEncoding,
            )
        )
        settings = job.get("settings") or {}
        profile = f"{settings.get('mode', '?')}, {settings.get('resolution', '?')} dpi, {settings.get('source', '?')}"
        first_page = (batch_seq - 1) * self.pages_per_batch
        for index in range(1, self.pages_per_batch + 1):
            lines = [
                (24, 72, 760, job.get("title", "")),
                (
                    14,
                    72,
                    720,
                    f"Scan job {job.get('id')}  -  batch {batch_seq}, page {index} of {self.pages_per_batch}",
                ),
                (14, 72, 700, f"Sheet {first_page + index} of this job  -  {profile}"),
                (10, 72, 60, "Simulated scanner (Bureau reference agent)"),
            ]
            content = b"".join(
                b"BT /F1 %d Tf %d %d Td %s Tj ET\n" % (size, x, y, _pdf_text(text))
                for size, x, y, text in lines
            )
            content += b"0.5 w 60 40 475 762 re S\n"  # a frame, like the edge of the sheet
            page = Dictionary(
                Type=Name.Page,
                MediaBox=Array([0, 0, *A4_POINTS]),
                Resources=Dictionary(Font=Dictionary(F1=font)),
                Contents=pdf.make_stream(content),
            )
            pdf.pages.append(pikepdf.Page(page))
        out = io.BytesIO()
        pdf.save(out, deterministic_id=True)  # a rescan of the same pages is the same file
        return out.getvalue()


SANE_MODES = {"color": "Color", "gray": "Gray", "lineart": "Lineart"}
SANE_SOURCES = {"flatbed": "Flatbed", "adf": "ADF", "adf_duplex": "ADF Duplex"}


class SaneScanner:
    name = "sane"

    def __init__(
        self, *, device: str | None = None, scanimage: str = "scanimage", timeout: float = 600
    ):
        self.device = device
        self.scanimage = scanimage
        self.timeout = timeout

    def scan(self, *, job: dict, batch_seq: int) -> bytes:
        if shutil.which(self.scanimage) is None:
            raise ScannerError(f"{self.scanimage} not found: install SANE (sane-utils)")
        settings = job.get("settings") or {}
        source = settings.get("source", "flatbed")
        command = [
            self.scanimage,
            "--format=pnm",
            f"--mode={SANE_MODES.get(settings.get('mode'), 'Gray')}",
            f"--resolution={int(settings.get('resolution', 300))}",
            f"--source={SANE_SOURCES.get(source, 'Flatbed')}",
        ]
        if self.device:
            command.insert(1, f"--device-name={self.device}")
        with tempfile.TemporaryDirectory(prefix="bureau-scan-") as folder:
            # --batch scans until the feeder is empty; a flatbed gives one page.
            command.append(f"--batch={Path(folder) / 'page-%04d.pnm'}")
            if source == "flatbed":
                command.append("--batch-count=1")
            try:
                result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                    command, capture_output=True, timeout=self.timeout, check=False
                )
            except subprocess.TimeoutExpired:
                raise ScannerError(f"scanimage did not finish within {self.timeout:.0f}s") from None
            pages = sorted(Path(folder).glob("page-*.pnm"))
            # scanimage exits non-zero with "Document feeder out of documents"
            # after a complete ADF batch; only no pages at all is a failure.
            if not pages:
                message = result.stderr.decode(errors="replace").strip()[-300:]
                raise ScannerError(
                    f"scanimage produced no page: {message or f'exit {result.returncode}'}"
                )
            resolution = int(settings.get("resolution", 300))
            return pnm_pages_to_pdf([page.read_bytes() for page in pages], resolution=resolution)


def _pnm_tokens(data: bytes, count: int) -> tuple[list[bytes], int]:
    """Read ``count`` header tokens (skipping # comments); return them and
    the offset of the raster, which starts after one whitespace byte."""
    tokens: list[bytes] = []
    i = 0
    while len(tokens) < count:
        while i < len(data) and data[i : i + 1].isspace():
            i += 1
        if data[i : i + 1] == b"#":
            while i < len(data) and data[i : i + 1] not in (b"\n", b"\r"):
                i += 1
            continue
        start = i
        while i < len(data) and not data[i : i + 1].isspace():
            i += 1
        if start == i:
            raise ScannerError("truncated PNM header")
        tokens.append(data[start:i])
    return tokens, i + 1


def pnm_pages_to_pdf(images: list[bytes], *, resolution: int) -> bytes:
    """Binary PNM (P4 line art, P5 gray, P6 colour, 8 bits) → one PDF page each."""
    pdf = pikepdf.new()
    for data in images:
        magic = data[:2]
        if magic == b"P4":
            (_, width, height), offset = _pnm_tokens(data, 3)
            maxval, colorspace, bits, decode = 1, Name.DeviceGray, 1, Array([1, 0])  # 1 = black
            raster_len = (int(width) + 7) // 8 * int(height)
        elif magic in (b"P5", b"P6"):
            (_, width, height, maxval), offset = _pnm_tokens(data, 4)
            if int(maxval) > 255:
                raise ScannerError("16-bit PNM is not supported; scan with 8 bits")
            colorspace = Name.DeviceGray if magic == b"P5" else Name.DeviceRGB
            bits, decode = 8, None
            channels = 1 if magic == b"P5" else 3
            raster_len = int(width) * int(height) * channels
        else:
            raise ScannerError("scanimage output is not a binary PNM (P4/P5/P6)")
        width, height = int(width), int(height)
        raster = data[offset : offset + raster_len]
        if len(raster) != raster_len:
            raise ScannerError("truncated PNM raster")
        image = pikepdf.Stream(pdf, zlib.compress(raster, 6))
        image.Type = Name.XObject
        image.Subtype = Name.Image
        image.Width, image.Height = width, height
        image.ColorSpace = colorspace
        image.BitsPerComponent = bits
        image.Filter = Name.FlateDecode
        if decode is not None:
            image.Decode = decode
        page_w = width * 72 / resolution
        page_h = height * 72 / resolution
        content = f"q {page_w:.3f} 0 0 {page_h:.3f} 0 0 cm /Im0 Do Q\n".encode()
        page = Dictionary(
            Type=Name.Page,
            MediaBox=Array([0, 0, page_w, page_h]),
            Resources=Dictionary(XObject=Dictionary(Im0=image)),
            Contents=pdf.make_stream(content),
        )
        pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()
