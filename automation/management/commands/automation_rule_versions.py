from django.core.management.base import CommandError

from automation.models import AutomationRule, RuleVersion
from automation.services.versions import rule_version_diff
from config.commands import BureauCommand


class Command(BureauCommand):
    help = (
        "A rule's kept versions, one line each (newest first), or with --diff N what "
        "version N changed from the version before it."
    )

    def add_arguments(self, parser):
        parser.add_argument("rule_id", type=int)
        parser.add_argument("--diff", type=int, metavar="VERSION", help="show this version's diff")

    def run(self, *args, rule_id, diff, **options):
        rule = AutomationRule.objects.filter(pk=rule_id).first()
        if rule is None:
            raise CommandError(f"rule {rule_id} does not exist")
        versions = rule.versions.select_related("saved_by").order_by("-version")
        if diff is not None:
            version = versions.filter(version=diff).first()
            if version is None:
                kept = ", ".join(str(v) for v in versions.values_list("version", flat=True))
                raise CommandError(
                    f"rule {rule_id} has no kept version {diff} (kept: {kept or 'none'})"
                )
            self.stdout.write(rule_version_diff(version=version) or "the first version kept\n")
            return
        self.stdout.write(f"rule {rule.pk} {rule.name}: now at version {rule.version}")
        for version in versions:
            self._line(version)

    def _line(self, version: RuleVersion) -> None:
        by = version.saved_by.username if version.saved_by else "Bureau"
        actions = len(version.definition.get("actions", []))
        self.stdout.write(
            f"  v{version.version}  {version.saved_at:%Y-%m-%d %H:%M:%S}  by {by}  "
            f"{actions} action(s)"
        )
