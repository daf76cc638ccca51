"""The Knox (Brity) approval API client.

Submit follows the public Brity body. The status and withdraw endpoints are
not public: they are defined here and in the bundled simulator behind the
same small interface, with their paths in settings, so the real endpoints can
be dropped in by configuration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from approvals.choices import KnoxStatus
from approvals.knox.errors import (
    KnoxError,
    KnoxProtocolError,
    KnoxRejected,
    KnoxTimeout,
    KnoxUnavailable,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusReport:
    """Knox's word on one document: a status, 'not found', or an unreadable entry."""

    ap_inf_id: str
    status: KnoxStatus | None = None
    found: bool = True
    error: KnoxProtocolError | None = None
    raw: dict | None = None
    # Status 5 (전결, decided by delegation): the delegate's EP ID, when Knox names one.
    delegate_ep_id: str | None = None


@dataclass(frozen=True)
class KnoxConfig:
    base_url: str
    system_id: str
    token: str
    connect_timeout: float
    read_timeout: float
    batch_size: int
    submit_path: str
    status_path: str
    withdraw_path: str
    status_retries: int
    poll_concurrency: int

    @classmethod
    def from_settings(cls) -> KnoxConfig:
        return cls(
            base_url=settings.KNOX_BASE_URL.rstrip("/"),
            system_id=settings.KNOX_SYSTEM_ID,
            token=settings.KNOX_TOKEN,
            connect_timeout=settings.KNOX_CONNECT_TIMEOUT,
            read_timeout=settings.KNOX_READ_TIMEOUT,
            batch_size=settings.KNOX_STATUS_BATCH_SIZE,
            submit_path=settings.KNOX_SUBMIT_PATH,
            status_path=settings.KNOX_STATUS_PATH,
            withdraw_path=settings.KNOX_WITHDRAW_PATH,
            status_retries=settings.KNOX_STATUS_RETRIES,
            poll_concurrency=max(1, settings.KNOX_POLL_CONCURRENCY),
        )


class KnoxClient:
    def __init__(self, config: KnoxConfig):
        self.config = config
        # A Session is not documented as thread-safe: each thread that calls
        # Knox (the caller, the poll's pool) keeps its own.
        self._local = threading.local()
        self._calls_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.calls = 0  # HTTP requests made, for the benchmark and the tests

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Retries are decided per call below (only safe ones repeat), not by urllib3.
            session.mount("http://", HTTPAdapter(max_retries=0, pool_maxsize=4))
            session.mount("https://", HTTPAdapter(max_retries=0, pool_maxsize=4))
            session.headers.update(
                {"System-ID": self.config.system_id, "Accept": "application/json"}
            )
            if self.config.token:
                session.headers["Authorization"] = f"Bearer {self.config.token}"
            self._local.session = session
        return session

    # --- calls ----------------------------------------------------------------------

    def submit(
        self,
        *,
        ap_inf_id: str,
        subject: str,
        contents: str,
        drafter_ep_id: str,
        approvers: list[dict[str, Any]],
        submitted_at: datetime,
        urgent: bool = False,
    ) -> dict:
        """Submit a document. Not repeated on failure: a timeout leaves the
        outcome unknown, and the poller settles it by apInfId."""
        body = {
            "apInfId": ap_inf_id,
            "subject": subject,
            "contents": contents,
            "contentsType": "HTML",
            "docSecuType": "PERSONAL",
            "notifyOption": "0",
            "urgYn": "Y" if urgent else "N",
            "sbmDt": submitted_at.strftime("%Y%m%d%H%M%S"),
            "timeZone": settings.TIME_ZONE,
            "sbmLang": "ko",
            "aplns": [
                {"epId": drafter_ep_id, "seq": "0", "role": "0", "aplnStatsCode": "0"},
                *(
                    {
                        "epId": a["ep_id"],
                        "seq": str(a["seq"]),
                        "role": str(a["role"]),
                        "aplnStatsCode": "0",
                    }
                    for a in approvers
                ),
            ],
        }
        return self._post(self.config.submit_path, body)

    def statuses(self, ap_inf_ids: Iterable[str]) -> dict[str, StatusReport]:
        """Status of many documents, ``batch_size`` per call. Read-only, so a
        failed call is retried. One unreadable entry spoils only itself."""
        ids = list(dict.fromkeys(ap_inf_ids))
        reports: dict[str, StatusReport] = {}
        size = self.config.batch_size
        for start in range(0, len(ids), size):
            reports.update(self._status_chunk(ids[start : start + size]))
        return reports

    def statuses_each(
        self, chunks: Iterable[list[str]]
    ) -> Iterator[tuple[list[str], dict[str, StatusReport] | KnoxError]]:
        """Ask about each chunk of ids (at most ``batch_size`` each), at most
        ``poll_concurrency`` calls at a time, and yield ``(chunk, reports)`` in
        the chunks' order, or ``(chunk, error)`` for a chunk whose call failed:
        one failed chunk spoils only itself.

        Only the HTTP runs on the pool's threads. ``chunks`` is drawn, and the
        caller's work between two answers runs, on the calling thread (so its
        database connection is never shared), while the pool asks about the
        next chunks; at most twice the pool's size are asked ahead, so memory
        stays bounded however many chunks there are."""
        workers = self.config.poll_concurrency
        pool = self._status_pool()
        ahead: deque[tuple[list[str], Future]] = deque()
        try:
            for chunk in chunks:
                if len(chunk) > self.config.batch_size:
                    raise ValueError(f"a status chunk holds at most {self.config.batch_size} ids")
                ahead.append((chunk, pool.submit(self._status_chunk, chunk)))
                if len(ahead) >= 2 * workers:
                    yield self._answer(*ahead.popleft())
            while ahead:
                yield self._answer(*ahead.popleft())
        finally:
            # The caller stopped early (or failed): ask nothing more, and wait
            # for the calls under way, so none outlives the cycle.
            for _chunk, future in ahead:
                future.cancel()
            wait([future for _chunk, future in ahead])

    def _status_pool(self) -> ThreadPoolExecutor:
        """The pool the status calls run from: one per client, its threads
        (and their Sessions, kept alive between cycles) made on first use."""
        with self._calls_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.config.poll_concurrency, thread_name_prefix="knox-status"
                )
            return self._pool

    @staticmethod
    def _answer(
        chunk: list[str], future: Future
    ) -> tuple[list[str], dict[str, StatusReport] | KnoxError]:
        try:
            return chunk, future.result()
        except KnoxError as error:
            return chunk, error

    def _status_chunk(self, chunk: list[str]) -> dict[str, StatusReport]:
        answer = self._post(
            self.config.status_path, {"apInfIds": chunk}, retries=self.config.status_retries
        )
        return self._parse_statuses(chunk, answer)

    def withdraw(self, *, ap_inf_id: str, reason: str = "") -> dict:
        return self._post(self.config.withdraw_path, {"apInfId": ap_inf_id, "opinion": reason})

    # --- plumbing ---------------------------------------------------------------------

    def _post(self, path: str, body: dict, *, retries: int = 0) -> dict:
        url = f"{self.config.base_url}{path}"
        attempt = 0
        while True:
            try:
                return self._post_once(url, body)
            except (KnoxUnavailable, KnoxTimeout):
                if attempt >= retries:
                    raise
                attempt += 1
                time.sleep(min(0.2 * 2**attempt, 2.0))

    def _post_once(self, url: str, body: dict) -> dict:
        with self._calls_lock:
            self.calls += 1
        try:
            response = self.session.post(
                url, json=body, timeout=(self.config.connect_timeout, self.config.read_timeout)
            )
        except requests.ConnectTimeout:
            raise KnoxUnavailable("Knox did not accept the connection in time.") from None
        except requests.ReadTimeout:
            raise KnoxTimeout("Knox did not answer in time; the outcome is unknown.") from None
        except requests.ConnectionError as error:
            # Refused or unresolvable: nothing was sent. A connection dropped
            # mid-answer is indistinguishable from a timeout for the caller.
            if _never_connected(error):
                raise KnoxUnavailable("Knox is unreachable.") from None
            raise KnoxTimeout("The connection to Knox broke; the outcome is unknown.") from None
        if response.status_code >= 500:
            raise KnoxUnavailable(f"Knox answered HTTP {response.status_code}.")
        try:
            answer = response.json()
        except ValueError:
            raise KnoxProtocolError(
                f"Knox answered HTTP {response.status_code} with a body that is not JSON."
            ) from None
        if not isinstance(answer, dict):
            raise KnoxProtocolError("Knox answered with JSON that is not an object.")
        if response.status_code >= 400 or answer.get("result") != "success":
            message = str(
                answer.get("errorMessage")
                or answer.get("message")
                or f"HTTP {response.status_code}"
            )
            code = str(answer.get("errorCode") or "")
            raise KnoxRejected(
                f"Knox refused the request: {message}"[:500],
                extra={"knox_code": code[:50]} if code else None,
            )
        return answer

    @staticmethod
    def _parse_statuses(chunk: list[str], answer: dict) -> dict[str, StatusReport]:
        data = answer.get("data")
        if not isinstance(data, list):
            raise KnoxProtocolError("Knox's status answer has no list of documents.")
        reports: dict[str, StatusReport] = {}
        for entry in data:
            if not isinstance(entry, dict) or entry.get("apInfId") not in chunk:
                continue  # not one we asked about: nothing to attribute it to
            ap_inf_id = entry["apInfId"]
            try:
                status = KnoxStatus(int(entry.get("status")))
            except (TypeError, ValueError):
                reports[ap_inf_id] = StatusReport(
                    ap_inf_id,
                    error=KnoxProtocolError(f"Knox sent an unreadable status for {ap_inf_id}."),
                    raw=entry,
                )
                continue
            reports[ap_inf_id] = StatusReport(
                ap_inf_id,
                status=status,
                raw=entry,
                delegate_ep_id=_delegate_ep_id(entry)
                if status == KnoxStatus.DELEGATED_FINAL
                else None,
            )
        for ap_inf_id in answer.get("notFound") or []:
            if ap_inf_id in chunk and ap_inf_id not in reports:
                reports[ap_inf_id] = StatusReport(ap_inf_id, found=False)
        for ap_inf_id in chunk:
            if ap_inf_id not in reports:
                reports[ap_inf_id] = StatusReport(
                    ap_inf_id, error=KnoxProtocolError(f"Knox's answer left out {ap_inf_id}.")
                )
        return reports


def _delegate_ep_id(entry: dict) -> str | None:
    """Who decided a document by delegation (전결). Knox's status answer is not
    public; we read it where Knox names people everywhere else, the approval
    line: the entry's ``aplns`` (``epId``, ``seq``, ``role``, ``aplnStatsCode``,
    as in the submit body), in which the approver who made the delegated final
    decision carries the document's own code 5 — an approver of the line, or
    a delegate Knox added to it. None when the line is absent or names nobody."""
    line = entry.get("aplns")
    if not isinstance(line, list):
        return None
    for apln in line:
        if not isinstance(apln, dict) or str(apln.get("aplnStatsCode")) != str(
            int(KnoxStatus.DELEGATED_FINAL)
        ):
            continue
        ep_id = apln.get("epId")
        if isinstance(ep_id, str) and ep_id.strip():
            return ep_id.strip()[:64]
    return None


def _never_connected(error: requests.ConnectionError) -> bool:
    text = repr(error)
    return any(
        marker in text
        for marker in (
            "NewConnectionError",
            "Connection refused",
            "Name or service not known",
            "nodename nor servname",
        )
    )


_client: KnoxClient | None = None


def get_knox_client() -> KnoxClient:
    """One client (one Session) per process, rebuilt when the settings change."""
    global _client
    config = KnoxConfig.from_settings()
    if _client is None or _client.config != config:
        _client = KnoxClient(config)
    return _client
