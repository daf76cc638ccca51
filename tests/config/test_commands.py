"""The command base: domain errors become one CommandError line."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command

from config.commands import BureauCommand
from config.errors import Conflict


class Refusing(BureauCommand):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def run(self, *args, **options):
        raise self.error


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (Conflict("Scan job 4 is committed; it cannot become queued."), "Scan job 4 is committed"),
        (
            ValidationError({"name": ["Too long."], "age": ["Not a number."]}),
            "name: Too long.; age",
        ),
        (PermissionDenied("You may not."), "You may not."),
    ],
)
def test_a_domain_error_is_one_line(error, line):
    with pytest.raises(CommandError) as refused:
        Refusing(error).handle()

    assert line in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_secret_in_an_error_never_reaches_the_console(settings):
    settings.KNOX_TOKEN = "knox-token-7f3a9c"

    with pytest.raises(CommandError) as refused:
        Refusing(Conflict("Knox said: bad token knox-token-7f3a9c")).handle()

    assert "knox-token-7f3a9c" not in str(refused.value)


@pytest.mark.django_db
def test_a_real_command_reports_a_missing_object_in_one_line():
    with pytest.raises(CommandError, match="No pending action"):
        call_command("approvals_retry", "999999")
