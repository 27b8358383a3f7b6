"""Small helpers for service classes."""
from crmhub.contracts.phones import DEFAULT_REGION


def region(config: dict) -> str:
    """Default region for phone numbers written without a country code."""
    return (config or {}).get("DEFAULT_REGION") or DEFAULT_REGION
