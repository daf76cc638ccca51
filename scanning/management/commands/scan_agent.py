import logging
import os
import signal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from scanning import conf
from scanning.agent.client import AgentAuthError, AgentClient, Backoff
from scanning.agent.runner import Agent, AgentOptions
from scanning.agent.scanners import SaneScanner, SimulatedScanner


class Command(BaseCommand):
    help = (
        "The reference scan agent: heartbeats, claims queued scan jobs, scans "
        "batches (simulated or SANE), uploads them and finishes the job. Talks "
        "to the server's agent API only; rides out server restarts with backoff."
    )
    requires_system_checks = []  # runs on the scanner host; needs no database

    def add_arguments(self, parser):
        parser.add_argument(
            "--server", required=True, help="Bureau's base URL, e.g. http://127.0.0.1:8000"
        )
        token = parser.add_mutually_exclusive_group()
        token.add_argument(
            "--token",
            help="The agent token (prefer --token-file or SCAN_AGENT_TOKEN: argv is visible in ps).",
        )
        token.add_argument("--token-file", type=Path, help="Read the token from this file.")
        parser.add_argument("--scanner", choices=["simulated", "sane"], default="simulated")
        parser.add_argument("--device", help="SANE device name (scanimage --device-name).")
        parser.add_argument(
            "--scanimage", default="scanimage", help="The scanimage program to run."
        )
        parser.add_argument(
            "--batches", type=int, default=1, help="Kept batches per job before it is finished."
        )
        parser.add_argument(
            "--pages", type=int, default=3, help="Pages per batch (simulated scanner)."
        )
        parser.add_argument("--poll-interval", type=float, default=2.0)
        parser.add_argument("--heartbeat-interval", type=float, default=15.0)
        parser.add_argument(
            "--batch-pause",
            type=float,
            default=0.0,
            help="Seconds between batches (time to discard a jam).",
        )
        parser.add_argument(
            "--max-backoff",
            type=float,
            default=30.0,
            help="Longest wait between retries while the server is down.",
        )
        parser.add_argument("--max-jobs", type=int, help="Exit after this many jobs.")
        parser.add_argument(
            "--exit-when-idle", action="store_true", help="Exit when nothing is queued."
        )

    def handle(self, *args, **options):
        token = self._token(options)
        for name in ("batches", "pages"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1")
        if options["scanner"] == "sane":
            scanner = SaneScanner(device=options["device"], scanimage=options["scanimage"])
        else:
            scanner = SimulatedScanner(pages_per_batch=options["pages"])
        logging.getLogger("scanning.agent").setLevel(logging.INFO)
        agent_ref: dict = {}
        client = AgentClient(
            options["server"],
            token,
            backoff=Backoff(maximum=options["max_backoff"]),
            stop_requested=lambda: bool(agent_ref) and agent_ref["agent"].stopping,
            # Waiting out a server restart ends at once when the agent is told to stop.
            sleep=lambda seconds: agent_ref["agent"]._stop.wait(seconds),
        )
        agent = Agent(
            client,
            scanner,
            AgentOptions(
                batches=options["batches"],
                poll_interval=options["poll_interval"],
                heartbeat_interval=options["heartbeat_interval"],
                batch_pause=options["batch_pause"],
                max_jobs=options["max_jobs"],
                exit_when_idle=options["exit_when_idle"],
            ),
            out=lambda line: (self.stdout.write(line), self.stdout.flush()),
        )
        agent_ref["agent"] = agent

        def stop(signum, frame):
            agent.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            done = agent.run()
        except AgentAuthError as exc:
            raise CommandError(str(exc)) from None
        except ConnectionError as exc:
            if not agent.stopping:
                raise CommandError(str(exc)) from None
            done = agent.jobs_done
        finally:
            client.close()
        self.stdout.write(f"scan agent stopped after {done} job(s)")

    def _token(self, options) -> str:
        if options["token"]:
            return options["token"].strip()
        path = options["token_file"]
        if path is None and os.environ.get("SCAN_AGENT_TOKEN"):
            return os.environ["SCAN_AGENT_TOKEN"].strip()
        path = path or conf.agent_token_file()
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise CommandError(
                f"no agent token: pass --token, --token-file or SCAN_AGENT_TOKEN ({path}: {exc.strerror})"
            ) from None
        if not token:
            raise CommandError(f"the token file {path} is empty")
        return token
