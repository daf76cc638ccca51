"""automation's admin, a module per concept; importing them registers them."""

from automation.admin import (  # noqa: F401 - registers the admins
    action_templates,
    alerts,
    entities,
    inbound,
    notifications,
    rules,
    runs,
    versions,
)
