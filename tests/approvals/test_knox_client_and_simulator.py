import pytest
import requests

from approvals.choices import KnoxStatus
from approvals.knox import (
    KnoxProtocolError,
    KnoxRejected,
    KnoxTimeout,
    KnoxUnavailable,
    get_knox_client,
)
from approvals.knox.launcher import free_port, start_simulator, stop_simulator

DOC = {
    "ap_inf_id": "a" * 31 + "1",
    "subject": "Subject",
    "contents": "<p>x</p>",
    "drafter_ep_id": "EP-1",
    "approvers": [{"ep_id": "EP-2", "seq": 1, "role": 1}],
}


def _submit(ap_inf_id=None, **kw):
    from django.utils import timezone

    return get_knox_client().submit(
        **{**DOC, "ap_inf_id": ap_inf_id or DOC["ap_inf_id"], **kw}, submitted_at=timezone.now()
    )


def test_submit_sends_the_brity_body_with_system_id_and_bearer_token(knox, settings):
    settings.KNOX_TOKEN = "sim-token"
    settings.KNOX_SYSTEM_ID = "BUREAU-TEST"
    # the shared simulator accepts any token; the header itself is checked here
    client = get_knox_client()
    assert client.session.headers["Authorization"] == "Bearer sim-token"
    assert client.session.headers["System-ID"] == "BUREAU-TEST"

    answer = _submit()

    assert answer["result"] == "success"
    document = knox.document(DOC["ap_inf_id"])
    assert document["aplns"][0] == {"epId": "EP-1", "seq": "0", "role": "0", "aplnStatsCode": "0"}
    assert document["aplns"][1]["epId"] == "EP-2"
    assert len(document["sbmDt"]) == 14


def test_submit_is_idempotent_on_ap_inf_id_and_refuses_other_contents(knox):
    _submit()
    _submit()  # the same document again: fine

    with pytest.raises(KnoxRejected, match="other contents"):
        _submit(contents="<p>changed</p>")


def test_statuses_are_fetched_in_batches(knox, settings):
    settings.KNOX_STATUS_BATCH_SIZE = 2
    ids = [f"doc{n:029d}" for n in range(5)]
    for ap in ids[:4]:
        _submit(ap_inf_id=ap)
    knox.decide(ids[0], KnoxStatus.REJECTED)
    client = get_knox_client()
    before = client.calls

    reports = client.statuses(ids)

    assert client.calls - before == 3
    assert reports[ids[0]].status == KnoxStatus.REJECTED
    assert reports[ids[1]].status == KnoxStatus.IN_PROGRESS
    assert reports[ids[4]].found is False


def test_only_the_read_only_status_call_is_retried(knox, settings):
    settings.KNOX_STATUS_RETRIES = 2
    knox.faults(statuses="error", submit="error")
    client = get_knox_client()

    before = client.calls
    with pytest.raises(KnoxUnavailable):
        client.statuses(["x"])
    assert client.calls - before == 3

    before = client.calls
    with pytest.raises(KnoxUnavailable):
        _submit()
    assert client.calls - before == 1


@pytest.mark.parametrize(
    "fault, error",
    [("malformed", KnoxProtocolError), ("reject", KnoxRejected), ("error", KnoxUnavailable)],
)
def test_typed_errors(knox, fault, error):
    knox.faults(submit=fault)

    with pytest.raises(error):
        _submit()


def test_a_timeout_is_a_knox_timeout_and_the_document_still_arrived(knox):
    knox.faults(submit="timeout", hang=3)

    with pytest.raises(KnoxTimeout):
        _submit()

    assert knox.document(DOC["ap_inf_id"]) is not None


def test_nobody_listening_is_unavailable(settings):
    settings.KNOX_BASE_URL = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(KnoxUnavailable):
        _submit()


def test_the_simulator_keeps_documents_across_a_restart_and_can_auto_approve(tmp_path, settings):
    data_file = tmp_path / "docs.json"
    first = start_simulator(data_file)
    try:
        settings.KNOX_BASE_URL = first.url
        _submit()
    finally:
        stop_simulator(first)

    second = start_simulator(data_file, "--auto-approve-after", "0")
    try:
        settings.KNOX_BASE_URL = second.url
        report = get_knox_client().statuses([DOC["ap_inf_id"]])[DOC["ap_inf_id"]]
    finally:
        stop_simulator(second)

    assert report.status == KnoxStatus.COMPLETE


def test_the_simulator_page_lists_documents_with_buttons_that_decide(knox):
    _submit()

    page = requests.get(f"{knox.url}/", timeout=5).text
    requests.post(
        f"{knox.url}/ui/decide", data={"apInfId": DOC["ap_inf_id"], "decision": "reject"}, timeout=5
    )

    assert "Subject" in page and 'value="approve"' in page
    assert knox.document(DOC["ap_inf_id"])["status"] == KnoxStatus.REJECTED


def test_the_simulator_requires_the_token_it_was_given(tmp_path, settings):
    simulator = start_simulator(tmp_path / "docs.json", "--token", "right")
    try:
        settings.KNOX_BASE_URL = simulator.url
        settings.KNOX_TOKEN = "wrong"
        with pytest.raises(KnoxRejected, match="bearer token"):
            _submit()
        settings.KNOX_TOKEN = "right"
        assert _submit()["result"] == "success"
    finally:
        stop_simulator(simulator)


def test_a_bad_fault_is_refused_by_the_command():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="unknown fault 'nope'"):
        call_command("knox_simulator", "--fault", "nope=1")
