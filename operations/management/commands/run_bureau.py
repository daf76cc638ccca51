"""Run every Bureau process in the foreground: the web server, the django-q2
cluster, the Knox simulator (when Knox is local) and the reference scan agent.
Ctrl-C stops all of them.

The simulator and the agent are helpers around Bureau: when one exits, it is
started again after a backoff (1 s, doubling up to 30 s; back to 1 s once it
has stayed up a minute) and the console says so, while the web server and the
cluster keep running. If the web server or the cluster dies, everything stops,
so Bureau itself never runs half-up."""

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

# Restarted when they exit; any other process exiting stops everything.
RESTARTED = ("knox", "scan-agent")
RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
STEADY_AFTER = 60.0  # a helper that ran this long is restarted after the first delay again


class Command(BaseCommand):
    help = "Run the web server, the task cluster, the Knox simulator and the scan agent (Ctrl-C stops all)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("BUREAU_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("BUREAU_PORT", "8000")))

    def processes(self, host: str, port: int) -> dict[str, list[str]]:
        manage = [sys.executable, "manage.py"]
        processes = {
            "web": [*manage, "runserver", f"{host}:{port}", "--noreload"],
            "tasks": [*manage, "qcluster"],
        }
        knox = urlsplit(settings.KNOX_BASE_URL)
        if (
            knox.hostname in ("127.0.0.1", "localhost")
            and os.environ.get("BUREAU_KNOX_SIMULATOR", "1") != "0"
        ):
            # Bureau points at a local Knox: run the bundled simulator there.
            processes["knox"] = [
                *manage,
                "knox_simulator",
                "--host",
                knox.hostname,
                "--port",
                str(knox.port or 80),
            ]
        if apps.is_installed("scanning"):
            # The reference agent with the simulated scanner, so a job queued in
            # the admin is scanned end to end. It waits out runserver's start.
            agent_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            processes["scan-agent"] = [
                *manage,
                "scan_agent",
                "--server",
                f"http://{agent_host}:{port}",
                "--token-file",
                str(settings.SCANNING_AGENT_TOKEN_FILE),
                "--scanner",
                "simulated",
                "--batches",
                "2",
                "--pages",
                "3",
                "--batch-pause",
                "5",
            ]
        return processes

    def handle(self, *args, host, port, **options):
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        if apps.is_installed("scanning"):
            # Idempotent: keeps the token already in the file, or writes a new one.
            call_command(
                "scanning_create_agent",
                "local-scanner",
                token_file=str(settings.SCANNING_AGENT_TOKEN_FILE),
            )
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        commands = self.processes(host, port)
        for name, command in commands.items():
            children[name] = subprocess.Popen(command)
            self.stdout.write(f"started {name} (pid {children[name].pid})")
        base = f"http://{host}:{port}"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nBureau is up:\n  admin     {base}/admin/\n  API docs  {base}/api/v1/docs/\n"
                f"  health    {base}/healthz\n"
                + (
                    f"  Knox      {settings.KNOX_BASE_URL}/ (simulator: approve or reject here)\n"
                    if "knox" in children
                    else ""
                )
                + "Ctrl-C stops everything.\n"
            )
        )
        exit_code = 0
        started_at = dict.fromkeys(children, time.monotonic())
        delays = dict.fromkeys(RESTARTED, RESTART_FIRST_DELAY)
        restart_at: dict[str, float] = {}  # helpers that exited, and when to start them again
        while not stopping:
            now = time.monotonic()
            for name, child in list(children.items()):
                if name in restart_at:
                    if now >= restart_at[name]:
                        del restart_at[name]
                        children[name] = subprocess.Popen(commands[name])
                        started_at[name] = now
                        self.stdout.write(f"restarted {name} (pid {children[name].pid})")
                    continue
                if child.poll() is None:
                    continue
                if name not in RESTARTED:
                    self.stderr.write(f"{name} exited with {child.returncode}; stopping the rest")
                    exit_code = child.returncode or 1
                    stopping = True
                    break
                if now - started_at[name] >= STEADY_AFTER:
                    delays[name] = RESTART_FIRST_DELAY
                delay = delays[name]
                delays[name] = min(delay * 2, RESTART_MAX_DELAY)
                restart_at[name] = now + delay
                self.stderr.write(
                    self.style.WARNING(
                        f"{name} exited with {child.returncode}; restarting it in {delay:.0f} s "
                        "(web and tasks keep running)"
                    )
                )
            time.sleep(0.5)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("Bureau stopped.")
        if exit_code:
            sys.exit(exit_code)
