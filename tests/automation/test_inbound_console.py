"""Inbound sources in the console (saved by the service, counters read-only,
the secret chosen by its setting's name and never shown), the
``automation_inbound`` command, ``manage.py check`` and the OpenAPI schema."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from automation.models import Entity, InboundSource
from automation.services import inbound_source_save
from config.errors import Forbidden
from tests.automation.factories import (
    INBOUND_SECRET,
    INBOUND_SECRET_SETTING,
    inbound_source,
    signed_post,
)
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


def _form(**overrides):
    return {
        "slug": "crm",
        "name": "CRM",
        "description": "",
        "secret_setting": INBOUND_SECRET_SETTING,
        "is_active": "on",
        **overrides,
    }


def test_an_operator_adds_a_source_and_its_entity_is_made(admin_client, inbound_secret, entities):
    # when
    response = admin_client.post(reverse("admin:automation_inboundsource_add"), _form())

    # then
    assert response.status_code == 302, response.context["adminform"].form.errors
    source = InboundSource.objects.get()
    assert (source.slug, source.secret_setting, source.is_active) == (
        "crm",
        INBOUND_SECRET_SETTING,
        True,
    )
    assert (source.entity.name, source.entity.model_label) == ("inbound:crm", "inbound:crm")
    assert source.entity.entity_type.name == "inbound"


def test_the_secret_is_chosen_from_the_listed_names_only(admin_client, inbound_secret, settings):
    # given: a name that is set in the environment but not listed
    settings.AUTOMATION_INBOUND_SECRET_OTHER = "other"

    # when
    response = admin_client.post(
        reverse("admin:automation_inboundsource_add"),
        _form(secret_setting="AUTOMATION_INBOUND_SECRET_OTHER"),
    )

    # then
    assert response.status_code == 200
    assert "secret_setting" in response.context["adminform"].form.errors
    assert not InboundSource.objects.exists()
    assert not Entity.objects.filter(model_label__startswith="inbound:").exists()


def test_the_change_page_shows_counters_read_only_and_never_the_secret(
    admin_client, inbound_secret, entities
):
    # given: a source that refused a post
    source = inbound_source(slug="shop")
    body, headers = signed_post(secret="wrong")
    admin_client.post(
        "/api/v1/automation/inbound/shop/", body, content_type="application/json", headers=headers
    )
    url = reverse("admin:automation_inboundsource_change", args=[source.pk])

    # when
    page = admin_client.get(url)
    listing = admin_client.get(reverse("admin:automation_inboundsource_changelist"))
    attempt = admin_client.post(url, {**_form(slug="renamed", name="Shop"), "refused_signature": 0})

    # then: the counters and the slug are not fields; the secret's name shows, never its value
    form = page.context["adminform"].form
    assert "refused_signature" not in form.fields and "slug" not in form.fields
    text = page.content.decode() + listing.content.decode()
    assert INBOUND_SECRET_SETTING in text and INBOUND_SECRET not in text
    assert "/api/v1/automation/inbound/shop/" in text
    assert attempt.status_code == 302
    source.refresh_from_db()
    assert (source.slug, source.name, source.refused_signature) == ("shop", "Shop", 1)
    assert source.entity.model_label == "inbound:shop"


def test_a_source_cannot_be_deleted_from_the_console(admin_client, inbound_secret, entities):
    source = inbound_source(slug="shop")
    response = admin_client.post(
        reverse("admin:automation_inboundsource_delete", args=[source.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert InboundSource.objects.filter(pk=source.pk).exists()


def test_the_service_refuses_a_slug_change_an_unlisted_secret_and_a_caller_without_permission(
    inbound_secret, entities
):
    source = inbound_source(slug="shop")
    with pytest.raises(ValidationError) as changed:
        inbound_source_save(actor=None, source=source, slug="other")
    with pytest.raises(ValidationError) as unlisted:
        inbound_source_save(actor=None, slug="x", name="X", secret_setting="SECRET_KEY")
    with pytest.raises(Forbidden):
        inbound_source_save(actor=UserFactory(), source=source, name="Mine")
    assert "slug" in changed.value.message_dict
    assert "not an inbound secret" in " ".join(unlisted.value.message_dict["secret_setting"])
    assert list(InboundSource.objects.values_list("slug", "name")) == [("shop", "Shop")]


def test_the_command_lists_sources_with_their_counters_and_never_the_secret(
    inbound_secret, entities, capsys, settings
):
    # given: one source with a secret, one whose setting is not set
    inbound_source(slug="shop")
    settings.AUTOMATION_INBOUND_SECRETS = [INBOUND_SECRET_SETTING, "AUTOMATION_INBOUND_SECRET_CRM"]
    inbound_source(slug="crm", secret_setting="AUTOMATION_INBOUND_SECRET_CRM")
    InboundSource.objects.filter(slug="shop").update(accepted=3, refused_repeat=2)

    # when
    call_command("automation_inbound", "list")

    # then
    out = capsys.readouterr().out
    assert "shop  active  secret AUTOMATION_INBOUND_SECRET_SHOP (set)  accepted 3" in out
    assert "refused: repeat 2" in out
    assert "crm  active  secret AUTOMATION_INBOUND_SECRET_CRM (NOT SET)" in out
    assert INBOUND_SECRET not in out


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "subcommand"),
        (["send"], "source"),
        (["send", "shop"], "--json"),
        (["send", "nosuch", "--json", "{}"], "no inbound source 'nosuch'"),
        (["send", "shop", "--json", "{oops"], "--json is not JSON"),
        (["send", "shop", "--json", "[1]"], "--json must be a JSON object"),
        (
            ["send", "shop", "--json", "{}", "--url", "http://127.0.0.1:9"],
            "could not post to http://127.0.0.1:9/api/v1/automation/inbound/shop/",
        ),
    ],
)
def test_the_command_refuses_in_one_line(inbound_secret, entities, args, message):
    inbound_source(slug="shop")
    with pytest.raises(CommandError) as refused:
        call_command("automation_inbound", *args)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value) and INBOUND_SECRET not in str(refused.value)


def test_the_command_refuses_to_send_without_the_secret(inbound_secret, entities, settings):
    inbound_source(slug="shop")
    settings.AUTOMATION_INBOUND_SECRET_SHOP = ""
    with pytest.raises(CommandError, match="AUTOMATION_INBOUND_SECRET_SHOP is not set"):
        call_command("automation_inbound", "send", "shop", "--json", "{}")


def test_check_reports_a_listed_name_that_is_not_an_inbound_secret(settings):
    settings.AUTOMATION_INBOUND_SECRETS = ["KNOX_TOKEN", INBOUND_SECRET_SETTING]
    errors = [e for e in run_checks() if e.id == "automation.E003"]
    assert len(errors) == 1 and "KNOX_TOKEN" in errors[0].msg


def test_the_schema_declares_the_endpoint_with_its_headers_and_answers(root):
    client = APIClient()
    client.force_authenticate(root)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/automation/inbound/{source}/"]["post"]
    headers = {p["name"]: p["required"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {
        "X-Bureau-Signature-256": True,
        "X-Bureau-Timestamp": True,
        "Idempotency-Key": True,
    }
    assert {"202", "400", "401", "409", "413"} <= set(operation["responses"])
    assert operation.get("security") in (None, [], [{}])
