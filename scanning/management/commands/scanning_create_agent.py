import os
from pathlib import Path

from django.core.management.base import CommandError

from config.commands import BureauCommand
from scanning.services import scan_agent_create, scan_agent_provision


class Command(BureauCommand):
    help = (
        "Create a scan agent and print its token once. With --token-file the "
        "command is idempotent (for `make run`): the token in the file is kept "
        "if the agent accepts it, otherwise a new one is issued and written there."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--token-file",
            type=Path,
            help="Read the token from / write it to this file (mode 0600) instead of printing it.",
        )

    def run(self, *args, name: str, token_file: Path | str | None, **options):
        token_file = Path(token_file) if token_file else None  # call_command passes a str
        if token_file is None:
            issued = scan_agent_create(name=name)
            self.stdout.write(self.style.SUCCESS(f"scan agent {issued.agent.name} created"))
            self.stdout.write(f"token (shown once, keep it secret): {issued.token}")
            return
        token = _read_token(token_file)
        issued = scan_agent_provision(name=name, token=token)
        if issued is None:
            self.stdout.write(f"scan agent {name} already accepts the token in {token_file}")
            return
        _write_token(token_file, issued.token)
        verb = "created" if issued.created else "given a new token"
        self.stdout.write(self.style.SUCCESS(f"scan agent {name} {verb}; token in {token_file}"))


def _read_token(path: Path) -> str | None:
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not a token file (not text)") from None
    return token or None


def _write_token(path: Path, token: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None
