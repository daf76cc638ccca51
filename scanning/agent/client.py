"""HTTP client for the agent API, with backoff so the agent rides out a
server restart: connection errors, timeouts and 502/503/504 are retried with
exponential backoff (and jitter) until the server answers."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import requests

logger = logging.getLogger("scanning.agent")

RETRY_STATUSES = {502, 503, 504}


class AgentAuthError(Exception):
    """The server refused the token: retrying cannot help."""


class ApiError(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body if isinstance(body, dict) else {"detail": body}

    @property
    def code(self) -> str:
        return str(self.body.get("code", ""))


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0

    def delays(self):
        delay = self.initial
        while True:
            yield delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not crypto
            delay = min(delay * self.factor, self.maximum)


class AgentClient:
    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
        sleep=time.sleep,
        stop_requested=lambda: False,
    ):
        self.base = server.rstrip("/") + "/api/v1/scanning/agent/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.stop_requested = stop_requested
        # While the server is unreachable the agent says so once, not on every retry.
        self.outage = False

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, *, retry: bool = True, **kwargs) -> requests.Response:
        url = self.base + path
        delays = self.backoff.delays()
        while True:
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}"
            except requests.RequestException as exc:
                # A bad URL or the like: waiting cannot fix it.
                raise ConnectionError(f"{method} {path}: {type(exc).__name__}") from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    if self.outage:
                        self.outage = False
                        logger.info("the server answers again")
                    return self._checked(response)
                problem = f"HTTP {response.status_code}"
            if not retry or self.stop_requested():
                raise ConnectionError(f"{method} {path}: {problem}")
            delay = next(delays)
            if self.outage:
                logger.debug("%s %s: %s; retrying in %.1fs", method, path, problem, delay)
            else:
                self.outage = True
                logger.warning(
                    "%s %s: %s; retrying in %.1fs, with backoff until the server answers",
                    method,
                    path,
                    problem,
                    delay,
                )
            self.sleep(delay)
            # Files must be read again from the start on every attempt.
            for value in (kwargs.get("files") or {}).values():
                handle = value[1] if isinstance(value, tuple) else value
                if hasattr(handle, "seek"):
                    handle.seek(0)

    def _checked(self, response: requests.Response) -> requests.Response:
        if response.status_code in (401, 403):
            raise AgentAuthError(f"the server refused the agent token ({response.status_code})")
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = response.text[:500]
            raise ApiError(response.status_code, body)
        if response.status_code != 204 and "json" not in response.headers.get("Content-Type", ""):
            # Something answers at that URL, but not Bureau's agent API.
            raise ApiError(response.status_code, "the answer is not JSON")
        return response

    # --- the agent API -----------------------------------------------------------------

    def heartbeat(self, *, version: str, current_job: int | None, retry: bool = True) -> dict:
        return self.request(
            "POST", "heartbeat/", json={"version": version, "current_job": current_job}, retry=retry
        ).json()

    def claim(self) -> dict | None:
        response = self.request("POST", "claim/")
        return None if response.status_code == 204 else response.json()

    def job(self, job_id: int) -> dict:
        return self.request("GET", f"jobs/{job_id}/").json()

    def start_batch(self, job_id: int, batch_seq: int) -> dict:
        return self.request(
            "POST", f"jobs/{job_id}/batches/start/", json={"batch_seq": batch_seq}
        ).json()

    def upload_batch(self, job_id: int, batch_seq: int, pdf: bytes) -> dict:
        import io

        return self.request(
            "POST",
            f"jobs/{job_id}/batches/",
            data={"batch_seq": str(batch_seq)},
            files={"file": (f"batch-{batch_seq}.pdf", io.BytesIO(pdf), "application/pdf")},
        ).json()

    def finish(self, job_id: int) -> dict:
        return self.request("POST", f"jobs/{job_id}/finish/").json()

    def fail(self, job_id: int, error: str) -> dict:
        return self.request("POST", f"jobs/{job_id}/fail/", json={"error": error[:4000]}).json()
