import json

from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime

from automation.models import AutomationRule
from automation.services import Window, rule_backtest
from config.commands import BureauCommand


def _moment(text: str | None, name: str):
    if text is None:
        return None
    value = parse_datetime(text)
    if value is None or value.tzinfo is None:
        raise CommandError(f"{name} must be an ISO date and time with its offset, not {text!r}")
    return value


class Command(BureauCommand):
    help = (
        "What a rule would have done over the last N days (or --since/--until): its "
        "matches among the stored events, what each action would have done, and what "
        "the rules really did. Nothing is written or sent."
    )

    def add_arguments(self, parser):
        parser.add_argument("rule_id", type=int)
        parser.add_argument("--days", type=int, help="the last N days (default 30)")
        parser.add_argument("--since", help="window start, e.g. 2026-11-01T00:00:00+00:00")
        parser.add_argument("--until", help="window end (default now)")
        parser.add_argument("--sample", type=int, default=5, help="matches shown (default 5)")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the whole result"
        )

    def run(self, *args, rule_id, days, since, until, sample, as_json: bool, **options):
        rule = AutomationRule.objects.filter(pk=rule_id).select_related("entity").first()
        if rule is None:
            raise CommandError(f"rule {rule_id} does not exist")
        if sample < 0 or sample > 200:
            raise CommandError("--sample must be from 0 to 200")
        since_at, until_at = _moment(since, "--since"), _moment(until, "--until")
        if days is None and since_at is None:
            days = 30
        window = Window.of(days=days, since=since_at, until=until_at)
        result = rule_backtest(actor=None, rule=rule, window=window, sample_size=sample)
        if as_json:
            self.stdout.write(_dumps(result))
            return
        self._summary(result)

    def _summary(self, result: dict) -> None:
        write = self.stdout.write
        write(
            f"rule {result['rule']} v{result['rule_version']} {result['rule_name']!s} — "
            f"{result['entity']} {result['trigger']}, "
            f"{result['window']['since']} → {result['window']['until']}"
        )
        rows = f"{result['matched_rows']}{'+' if result['matched_rows_at_least'] else ''}"
        write(
            f"events scanned {result['events_scanned']}, matched {result['matched']} "
            f"({rows} distinct rows) in {result['elapsed_ms']} ms"
        )
        for action in result["actions"]:
            line = (
                f"  action {action['position']} {action['name']} ({action['action_type']}): "
                f"would run {action['would_run']}, errors {action['errors']}"
            )
            if action["first_error"]:
                line += f" — first: {action['first_error']}"
            write(line)
        mine = result["actual"]["this_rule"]
        statuses = ", ".join(f"{k} {v}" for k, v in mine["by_status"].items()) or "none"
        write(
            f"this rule really executed {mine['executions']} ({statuses}); matched but not "
            f"executed {mine['matched_not_executed']}; executed but not matched now "
            f"{mine['executed_not_matched']}"
        )
        for other in result["actual"]["all_rules"]:
            write(f"  rule {other['rule']} {other['name']}: {other['executions']} executions")
        for match in result["sample"]:
            write(f"  event {match['event']} row {match['id']} at {match['at']}")


def _dumps(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
