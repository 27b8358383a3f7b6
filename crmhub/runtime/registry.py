"""The services of the mesh, by name."""
from __future__ import annotations

from importlib import import_module

SERVICES = {
    "contacts": "crmhub.services.contacts.service:ContactsService",
    "deals": "crmhub.services.deals.service:DealsService",
    "telephony": "crmhub.services.telephony.service:TelephonyService",
    "messenger": "crmhub.services.messenger.service:MessengerService",
    "catalog": "crmhub.services.catalog.service:CatalogService",
    "email": "crmhub.services.email.service:EmailService",
    "reporting": "crmhub.services.reporting.service:ReportingService",
    "gateway": "crmhub.services.gateway.service:GatewayService",
}


def service_class(name: str):
    try:
        module, _, attr = SERVICES[name].partition(":")
    except KeyError:
        raise SystemExit(f"unknown service {name!r}; known: {', '.join(SERVICES)}") from None
    return getattr(import_module(module), attr)


def all_service_classes():
    return [service_class(name) for name in SERVICES]
