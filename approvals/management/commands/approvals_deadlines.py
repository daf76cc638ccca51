from approvals.services import pending_action_expire
from approvals.tasks import sweep_deadlines
from config.commands import BureauCommand
from config.errors import InvalidInput

MAX_BATCH_SIZE = 1000


def _whole_number(value: str, *, option: str, low: int, high: int) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidInput(f"{option} must be a whole number from {low} to {high}, not {value!r}.")
    return int(text)


class Command(BureauCommand):
    help = (
        "Run the approval deadline sweep now (recorded as an approvals.sweep_deadlines run): "
        "send due reminders, expire (and withdraw at Knox) or escalate actions past their "
        "deadline, retry withdrawals Knox did not confirm. With --expire ID, expire one "
        "in-flight action now instead. Runs as the system (the operator at the console)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            default=None,
            help=f"Rows per transaction (1 to {MAX_BATCH_SIZE}; default 100).",
        )
        parser.add_argument(
            "--expire",
            default=None,
            metavar="PENDING_ACTION_ID",
            help="Expire this in-flight action now and withdraw it at Knox.",
        )

    def run(self, *args, batch_size=None, expire=None, **options):
        if expire is not None:
            if batch_size is not None:
                raise InvalidInput("--expire and --batch-size do not go together.")
            pending_action_id = _whole_number(expire, option="--expire", low=1, high=2**63 - 1)
            action = pending_action_expire(pending_action_id=pending_action_id)
            withdrawn = (
                "withdrawn at Knox"
                if action.knox_withdrawn_at
                else f"not yet withdrawn at Knox ({action.knox_withdraw_error}); "
                "the next sweep tries again"
            )
            self.stdout.write(
                self.style.SUCCESS(f"pending action {action.pk}: {action.status}, {withdrawn}")
            )
            return
        size = None
        if batch_size is not None:
            size = _whole_number(batch_size, option="--batch-size", low=1, high=MAX_BATCH_SIZE)
        counts = sweep_deadlines(batch_size=size)
        if counts is None:
            self.stdout.write("A deadline sweep is already running; skipped.")
            return
        self.stdout.write(self.style.SUCCESS(", ".join(f"{k} {v}" for k, v in counts.items())))
