"""crmhub: a CRM integration hub built as a mesh of Nameko services."""

__version__ = "0.1.0"
