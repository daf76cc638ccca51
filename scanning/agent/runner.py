"""The agent's loop: heartbeat, claim, scan batches, upload, finish.

One job at a time (the scanner is one machine). A job is scanned until it
has ``batches`` kept batches: when an operator discards a jammed batch, the
next pass rescans it under the next batch_seq, so order is kept. Uploads are
idempotent per (job, batch_seq), so a retry after a lost response is safe.
A heartbeat thread keeps the server informed while a long scan runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from scanning.agent.client import AgentClient, ApiError
from scanning.agent.scanners import ScannerError

logger = logging.getLogger("scanning.agent")

VERSION = "bureau-reference-agent/1.0"
SCANNABLE = ("ready", "scanning")


@dataclass
class AgentOptions:
    batches: int = 1
    poll_interval: float = 2.0
    heartbeat_interval: float = 15.0
    batch_pause: float = 0.0
    max_jobs: int | None = None
    exit_when_idle: bool = False


class Agent:
    def __init__(self, client: AgentClient, scanner, options: AgentOptions, *, out=None):
        self.client = client
        self.scanner = scanner
        self.options = options
        self.out = out or (lambda line: logger.info("%s", line))
        self.current_job: int | None = None
        self.jobs_done = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- heartbeat ---------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.options.heartbeat_interval):
            try:
                self.client.heartbeat(version=VERSION, current_job=self.current_job, retry=False)
            except Exception as exc:  # noqa: BLE001 - the main loop reports outages
                logger.debug("heartbeat failed: %s", exc)

    # --- main loop ---------------------------------------------------------------------

    def run(self) -> int:
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        try:
            state = self.client.heartbeat(version=VERSION, current_job=None)
            self.out(f"connected to {self.client.base} as {VERSION}")
            resume = state.get("active_job")
            if resume and resume.get("status") in SCANNABLE:
                self.out(f"resuming job {resume['id']} ({resume['status']})")
                self._run_job(resume)
            idle = False  # said once when the agent starts waiting, not on every poll
            while not self.stopping and not self._enough_jobs():
                job = self.client.claim()
                if job is None:
                    if self.options.exit_when_idle:
                        self.out("nothing queued; exiting (--exit-when-idle)")
                        break
                    if not idle:
                        idle = True
                        self.out(
                            "waiting for a queued job "
                            f"(asking every {self.options.poll_interval:g} s)"
                        )
                    self._stop.wait(self.options.poll_interval)
                    continue
                idle = False
                self._run_job(job)
        finally:
            self._stop.set()
            beat.join(timeout=5)
        return self.jobs_done

    def _enough_jobs(self) -> bool:
        return self.options.max_jobs is not None and self.jobs_done >= self.options.max_jobs

    def _run_job(self, job: dict) -> None:
        job_id = job["id"]
        self.current_job = job_id
        self.out(f"job {job_id}: {job['title']!r} claimed")
        try:
            self._scan_job(job_id)
        except ScannerError as exc:
            self.out(f"job {job_id}: scanner failed: {exc}")
            self._report_failure(job_id, f"scanner: {exc}")
        except ApiError as exc:
            if exc.status == 400:
                # The server refused what we scanned (not a PDF, too large): say so.
                self.out(f"job {job_id}: upload refused: {exc.body}")
                self._report_failure(job_id, f"upload refused by the server: {exc.body}")
            else:
                # The job moved on without us (canceled, failed by the check): drop it.
                self.out(
                    f"job {job_id}: server said {exc.status} {exc.code or exc.body}; leaving it"
                )
        finally:
            self.current_job = None
            self.jobs_done += 1
            # Best effort: the heartbeat thread and the next loop report again anyway.
            with contextlib.suppress(Exception):
                self.client.heartbeat(version=VERSION, current_job=None, retry=False)

    def _scan_job(self, job_id: int) -> None:
        while not self.stopping:
            job = self.client.job(job_id)
            if job["status"] not in SCANNABLE:
                self.out(f"job {job_id} is {job['status']}; stopping work on it")
                return
            kept = sum(1 for batch in job["batches"] if batch["status"] == "scanned")
            if job["status"] == "ready" and kept >= self.options.batches:
                self.client.finish(job_id)
                self.out(f"job {job_id}: {kept} batch(es) scanned; finished, assembling")
                return
            if job["status"] == "ready":
                job = self.client.start_batch(job_id, job["next_batch_seq"])
            seq = job["next_batch_seq"]
            pdf = self.scanner.scan(job=job, batch_seq=seq)
            batch = self.client.upload_batch(job_id, seq, pdf)
            self.out(f"job {job_id}: batch {seq} uploaded ({batch['page_count']} pages)")
            if self.options.batch_pause:
                self._stop.wait(self.options.batch_pause)

    def _report_failure(self, job_id: int, error: str) -> None:
        try:
            self.client.fail(job_id, error)
        except ApiError as exc:
            self.out(f"job {job_id}: could not report the failure: {exc}")


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
