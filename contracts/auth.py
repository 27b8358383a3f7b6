"""Roles of API keys and what each may do."""

# permission -> roles that hold it
PERMISSIONS = {
    "contacts:read": {"admin", "manager", "operator", "integrator"},
    "contacts:write": {"admin", "manager", "operator", "integrator"},
    "contacts:merge": {"admin", "manager"},
    "deals:read": {"admin", "manager", "operator", "integrator"},
    "deals:write": {"admin", "manager", "operator", "integrator"},
    # Pipelines, templates, managers and lead rules: how the sales process is set up.
    "deals:configure": {"admin"},
    "ops:read": {"admin"},
    # Send dead letters back to the queue they failed in.
    "ops:replay": {"admin"},
    # Calls: the call log, the popup stream (own extensions), click-to-call, recordings.
    "calls:read": {"admin", "manager", "operator", "integrator"},
    "calls:place": {"admin", "manager", "operator"},
    "calls:listen": {"admin", "manager", "operator"},
    # Watch the popups of whole lines, or of every line: supervisors.
    "calls:supervise": {"admin", "manager"},
    # Extensions and their managers.
    "telephony:configure": {"admin"},
    # The catalog from 1C: products with prices and stock; the imports' state.
    "catalog:read": {"admin", "manager", "operator", "integrator"},
    "catalog:imports": {"admin", "integrator"},
    # Email campaigns: their drafts, previews and metrics; sending and cancelling them.
    "campaigns:read": {"admin", "manager", "integrator"},
    "campaigns:write": {"admin", "manager"},
    # Messenger conversations on the card: read them, and reply to the client.
    "messages:read": {"admin", "manager", "operator", "integrator"},
    "messages:send": {"admin", "manager", "operator"},
    # Email on the card: read the threads, write to the client; manage the templates.
    "email:read": {"admin", "manager", "operator", "integrator"},
    "email:send": {"admin", "manager", "operator", "integrator"},
    "email:templates": {"admin", "manager"},
    # Reports built from events: managers and admins read them; admins set plans and ad spend.
    "reports:read": {"admin", "manager"},
    "reports:write": {"admin"},
}
ROLES = {"admin", "manager", "operator", "integrator"}


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS.get(permission, ())
