"""The console's backtest page: a saved rule over the last N days, by the
service the API and ``automation_backtest`` call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from automation import permissions
from automation.models import AutomationRule
from automation.services import Window, rule_backtest
from config.errors import ApplicationError, Forbidden


class BacktestForm(forms.Form):
    days = forms.IntegerField(label="Last N days", min_value=1, max_value=366, initial=30)
    sample_size = forms.IntegerField(label="Matches shown", min_value=0, max_value=200, initial=20)


def rule_tool_view(
    model_admin,
    request,
    rule_id: int,
    *,
    form_class: type[forms.Form],
    run: Callable[[AutomationRule, dict], Any],
    doing: str,
    template: str,
    title: str,
    render: Callable[[Any], dict] = lambda result: {},
):
    """A page that tries a saved rule without changing anything (dry run,
    backtest): the rule, a form, and what ``run(rule, cleaned_data)`` found.
    The caller needs the dry-run permission; a service error shows as a
    message on the same page."""
    rule = get_object_or_404(
        AutomationRule.objects.select_related("entity", "trigger_type"), pk=rule_id
    )
    try:
        # The service checks it again; asked first, the page is not shown in vain.
        permissions.require(request.user, permissions.DRY_RUN_RULE, doing=doing)
    except Forbidden as refused:
        model_admin.message_user(request, refused.message, messages.ERROR)
        return redirect("admin:automation_automationrule_change", rule.pk)
    result = None
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = run(rule, form.cleaned_data)
        except ApplicationError as error:
            model_admin.message_user(request, error.message, messages.ERROR)
        except ValidationError as error:
            model_admin.message_user(request, " ".join(error.messages), messages.ERROR)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "rule": rule,
        "form": form,
        "result": result,
        **render(result),
        "title": f"{title}: {rule.name}",
    }
    return TemplateResponse(request, template, context)


def backtest_view(model_admin, request, rule_id: int):
    return rule_tool_view(
        model_admin,
        request,
        rule_id,
        form_class=BacktestForm,
        run=lambda rule, data: rule_backtest(
            actor=request.user,
            rule=rule,
            window=Window.of(days=data["days"]),
            sample_size=data["sample_size"],
        ),
        doing="backtest automation rules",
        template="admin/automation/automationrule/backtest.html",
        title="Backtest",
    )
