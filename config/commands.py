"""The base of Bureau's management commands: a domain error (an
``ApplicationError``, Django's ``ValidationError``, or a refused permission)
becomes one ``CommandError`` line and a non-zero exit, never a traceback.
Services sanitise what they quote from outside; here the configured secret
values are removed once more (the pattern rules would also eat our own words,
"token starts with …")."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError, error_text
from operations.sanitize import redact_configured_secrets


class BureauCommand(BaseCommand):
    """Write ``run(*args, **options)`` instead of ``handle``."""

    def run(self, *args, **options):
        raise NotImplementedError

    def handle(self, *args, **options):
        try:
            return self.run(*args, **options)
        except (ApplicationError, ValidationError, PermissionDenied) as error:
            raise CommandError(redact_configured_secrets(error_text(error, sep="; "))) from None
