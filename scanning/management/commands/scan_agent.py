import logging
import os
import shutil
import signal
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.core.management.base import CommandError

from config.commands import BureauCommand
from config.errors import ApplicationError
from scanning import conf
from scanning.agent.client import AgentAuthError, AgentClient, ApiError, Backoff
from scanning.agent.runner import Agent, AgentOptions
from scanning.agent.scanners import SaneScanner, SimulatedScanner
from scanning.services import scan_agent_token_check


class Command(BureauCommand):
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

    def run(self, *args, **options):
        # Every argument is checked before anything runs: bad input is one
        # line and a non-zero exit, never a traceback from deep in requests.
        server = _server_url(options["server"])
        token = self._token(options)
        for name in ("batches", "pages", "max_jobs"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("poll_interval", "heartbeat_interval", "max_backoff"):
            if not options[name] > 0:
                raise CommandError(f"--{name.replace('_', '-')} must be more than 0 seconds")
        if not options["batch_pause"] >= 0:
            raise CommandError("--batch-pause must be 0 seconds or more")
        if options["scanner"] == "sane" and shutil.which(options["scanimage"]) is None:
            raise CommandError(
                f"{options['scanimage']} not found: install SANE (sane-utils) or pass --scanimage"
            )
        if options["scanner"] == "sane":
            scanner = SaneScanner(device=options["device"], scanimage=options["scanimage"])
        else:
            scanner = SimulatedScanner(pages_per_batch=options["pages"])
        logging.getLogger("scanning.agent").setLevel(logging.INFO)
        agent_ref: dict = {}
        client = AgentClient(
            server,
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

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            done = agent.run()
        except AgentAuthError as exc:
            raise CommandError(str(exc)) from None
        except ApiError as exc:
            raise CommandError(_api_error_line(server, exc)) from None
        except ConnectionError as exc:
            if not agent.stopping:
                raise CommandError(str(exc)) from None
            done = agent.jobs_done
        finally:
            client.close()
            for sig, handler in previous.items():  # call_command runs inside other processes
                signal.signal(sig, handler)
        self.stdout.write(f"scan agent stopped after {done} job(s)")

    def _token(self, options) -> str:
        if options["token"]:
            return _checked_token(options["token"].strip(), "--token")
        path = options["token_file"]
        if path is None and os.environ.get("SCAN_AGENT_TOKEN"):
            return _checked_token(os.environ["SCAN_AGENT_TOKEN"].strip(), "SCAN_AGENT_TOKEN")
        path = Path(path) if path else None  # call_command passes a str
        path = path or conf.agent_token_file()
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise CommandError(
                f"no agent token: pass --token, --token-file or SCAN_AGENT_TOKEN ({path}: {exc.strerror})"
            ) from None
        except UnicodeDecodeError:
            raise CommandError(f"the token file {path} is not a text file") from None
        if not token:
            raise CommandError(f"the token file {path} is empty")
        return _checked_token(token, f"the token in {path}")


def _server_url(value: str) -> str:
    """Bureau's base URL, or a one-line CommandError saying what is wrong."""
    value = (value or "").strip()
    problem = None
    try:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https"):
            problem = "it needs http:// or https://"
        elif not parts.hostname:
            problem = "it has no host"
        elif parts.port == 0:
            problem = "its port is not valid"
        elif parts.query or parts.fragment:
            problem = "it must not have a query or a fragment"
        else:
            requests.Request("GET", value).prepare()  # whatever else requests would refuse
    except (ValueError, requests.RequestException):
        problem = "it is not a valid URL"
    if problem:
        raise CommandError(
            f"--server {value!r} is not Bureau's base URL ({problem}); "
            "give one like http://127.0.0.1:8000"
        )
    return value


def _checked_token(token: str, source: str) -> str:
    try:
        scan_agent_token_check(token)
    except ApplicationError as error:
        raise CommandError(f"{source} is not a scan agent token: {error.message}") from None
    return token


def _api_error_line(server: str, exc: ApiError) -> str:
    if exc.status in (200, 404, 405) or not exc.code:
        return (
            f"the server at {server} did not answer as Bureau's agent API (HTTP {exc.status}); "
            "is --server Bureau's base URL?"
        )
    detail = exc.body.get("detail")
    detail = " ".join(detail.split())[:300] if isinstance(detail, str) else ""
    return f"the server at {server} refused the agent (HTTP {exc.status} {exc.code}): {detail}"
