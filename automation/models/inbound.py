"""Inbound webhook sources: external systems that post signed events."""

from __future__ import annotations

from django.db import models

from automation.choices import InboundRefusal
from automation.models.rules import Entity


class InboundSource(models.Model):
    """An external system that posts signed events to
    ``/api/v1/automation/inbound/<slug>/``. Its accepted events belong to
    ``entity``, an Entity without a model (``inbound:<slug>``) that rules
    watch with the ``inbound`` trigger. The HMAC key is never stored:
    ``secret_setting`` names the setting (an environment variable listed in
    AUTOMATION_INBOUND_SECRETS) that holds it.

    The counters say what became of the posts that named this source: one
    for the accepted ones and one per refusal reason (``refused_<reason>``),
    raised in one UPDATE each, so concurrent posts never lose a count."""

    slug = models.SlugField(
        max_length=50,
        unique=True,
        help_text="The source's part of the URL: /api/v1/automation/inbound/<slug>/. "
        "Fixed once created.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    secret_setting = models.CharField(
        max_length=100,
        help_text="The setting (environment variable) holding this source's HMAC key: one of "
        "the AUTOMATION_INBOUND_SECRET_<NAME> names listed in AUTOMATION_INBOUND_SECRETS.",
    )
    entity = models.OneToOneField(
        Entity, on_delete=models.PROTECT, related_name="inbound_source", editable=False
    )
    is_active = models.BooleanField(
        default=True, help_text="An inactive source refuses every post (as a bad signature)."
    )
    accepted = models.PositiveBigIntegerField(default=0)
    refused_signature = models.PositiveBigIntegerField(default=0)
    refused_inactive = models.PositiveBigIntegerField(default=0)
    refused_timestamp = models.PositiveBigIntegerField(default=0)
    refused_body = models.PositiveBigIntegerField(default=0)
    refused_too_large = models.PositiveBigIntegerField(default=0)
    refused_repeat = models.PositiveBigIntegerField(default=0)
    last_accepted_at = models.DateTimeField(null=True, blank=True)
    last_refused_at = models.DateTimeField(null=True, blank=True)
    last_refusal = models.CharField(max_length=20, choices=InboundRefusal.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @staticmethod
    def counter_field(reason: str) -> str:
        return f"refused_{InboundRefusal(reason).value}"

    def refusals(self) -> dict[str, int]:
        """Refused posts per reason."""
        return {
            reason.value: getattr(self, self.counter_field(reason)) for reason in InboundRefusal
        }
