"""Actions where the object is: buttons on an admin detail page that call the
same service as the API (which checks the same permission).

A button posts to ``<object id>/do/<action>/``; an action that needs
confirmation shows a page asking first (a GET never changes anything). What
the service refuses, and what it did but ended failed, is reported as an
error message (red), never as success.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from config.errors import ApplicationError, error_text


class ActionFailed(Exception):
    """The service ran, and the object ended failed: report it as an error."""


@dataclass(frozen=True)
class ObjectAction:
    name: str  # the admin's method is do_<name>(request, obj) -> success message
    label: str
    available: Callable[[object], bool] = lambda obj: True
    # A question asked on a page of its own before anything is done.
    confirm: str = ""
    # A link to a page of its own (no service call here), e.g. a rule's dry run.
    link: Callable[[object], str] | None = None

    @property
    def opens_page(self) -> bool:
        """Shown as a link (a page asks or does it), not as a button that posts."""
        return self.link is not None or bool(self.confirm)


class ObjectActionsMixin:
    """For a ``ModelAdmin``: ``object_actions`` shown on the change page of each
    object where ``available(obj)``."""

    object_actions: tuple[ObjectAction, ...] = ()
    change_form_template = "admin/object_actions/change_form.html"

    def _admin_name(self, suffix: str) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_{suffix}"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/do/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=self._admin_name("object_action"),
            ),
            *super().get_urls(),
        ]

    def object_action_url(self, obj, action: ObjectAction) -> str:
        if action.link is not None:
            return action.link(obj)
        return reverse(f"admin:{self._admin_name('object_action')}", args=[obj.pk, action.name])

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["object_actions"] = [
                (action, self.object_action_url(obj, action))
                for action in self.object_actions
                if action.available(obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def object_action_view(self, request, object_id: str, action: str):
        spec = next((a for a in self.object_actions if a.name == action and not a.link), None)
        obj = self.get_object(request, unquote(object_id))
        if spec is None or obj is None or not self.has_view_permission(request, obj):
            raise Http404
        change_url = reverse(f"admin:{self._admin_name('change')}", args=[obj.pk])
        if request.method != "POST" or (spec.confirm and request.POST.get("confirmed") != "yes"):
            if not spec.confirm:
                return HttpResponseRedirect(change_url)
            context = {
                **self.admin_site.each_context(request),
                "title": spec.label,
                "question": spec.confirm,
                "object": obj,
                "opts": self.model._meta,
                "action": spec,
                "change_url": change_url,
            }
            return TemplateResponse(request, "admin/object_actions/confirm.html", context)
        try:
            done = getattr(self, f"do_{spec.name}")(request, obj)
        except (ApplicationError, ValidationError) as error:
            self.message_user(request, error_text(error, sep="; "), messages.ERROR)
        except ActionFailed as failed:
            self.message_user(request, str(failed), messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(change_url)
