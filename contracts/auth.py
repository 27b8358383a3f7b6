"""Roles of API keys and what each may do."""

# permission -> roles that hold it
PERMISSIONS = {
    "contacts:read": {"admin", "manager", "operator", "integrator"},
    "contacts:write": {"admin", "manager", "operator", "integrator"},
    "contacts:merge": {"admin", "manager"},
    "ops:read": {"admin"},
}
ROLES = {"admin", "manager", "operator", "integrator"}


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS.get(permission, ())
