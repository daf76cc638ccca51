from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from approvals.knox.simulator import SimulatorState, default_faults, make_server, parse_fault
from config.commands import BureauCommand


class Command(BureauCommand):
    help = "Run the Knox approval API simulator (a real HTTP server) for development and tests."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--data-file",
            default=str(Path(settings.VAR_DIR) / "knox_simulator.json"),
            help="Where documents are kept, so a restart loses none.",
        )
        parser.add_argument(
            "--auto-approve-after",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Approve documents by itself this long after they arrive.",
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Inject a fault: latency=0.5, submit=error|reject|timeout|malformed, "
            "statuses=…, withdraw=…, malformed_ids=ID,ID, hang=SECONDS, "
            "message=TEXT (what reject and error answer).",
        )
        parser.add_argument(
            "--token",
            default=settings.KNOX_TOKEN,
            help="Bearer token to require (default: KNOX_TOKEN; empty accepts any).",
        )

    def run(self, *args, host, port, data_file, auto_approve_after, fault, token, **options):
        faults = default_faults()
        for spec in fault:
            try:
                parse_fault(spec, faults)
            except ValueError as error:
                raise CommandError(f"--fault {spec}: {error}") from None
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be between 0 and 65535, got {port}")
        if Path(data_file).is_dir():
            raise CommandError(f"--data-file {data_file} is a directory; give a file path")
        try:
            state = SimulatorState(
                Path(data_file), auto_approve_after=auto_approve_after, token=token
            )
        except ValueError:
            raise CommandError(f"{data_file} is not a simulator data file (not JSON)") from None
        except OSError as error:
            raise CommandError(f"cannot read {data_file}: {error.strerror}") from None
        state.faults = faults
        paths = {
            "submit": settings.KNOX_SUBMIT_PATH,
            "statuses": settings.KNOX_STATUS_PATH,
            "withdraw": settings.KNOX_WITHDRAW_PATH,
        }
        try:
            server = make_server(host=host, port=port, state=state, paths=paths)
        except (OSError, OverflowError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise CommandError(f"cannot listen on {host}:{port}: {reason}") from None
        self.stdout.write(
            f"Knox simulator on http://{host}:{server.server_port}/ "
            f"({len(state.documents)} documents from {data_file})",
        )
        self.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
