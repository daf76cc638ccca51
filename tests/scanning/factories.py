import factory

from scanning.choices import DEFAULT_SCAN_SETTINGS, ScanJobStatus
from scanning.models import Document, ScanJob


class ScanJobFactory(factory.django.DjangoModelFactory):
    """A raw job row, for tests of the database and of the checks. Tests of
    behaviour move jobs through the services."""

    class Meta:
        model = ScanJob

    title = factory.Sequence(lambda n: f"Scan {n}")
    settings = factory.LazyFunction(lambda: dict(DEFAULT_SCAN_SETTINGS))
    status = ScanJobStatus.DRAFT


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Document

    title = factory.Sequence(lambda n: f"Document {n}")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    page_count = 1
    size_bytes = 100
    file = factory.django.FileField(filename="doc.pdf", data=b"%PDF-1.4")
