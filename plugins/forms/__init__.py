"""The generic website forms connector (``/hooks/forms/<form>``), registered through the
``crmhub.connectors`` entry point like any third-party connector."""
from crmhub.plugins import hookimpl
from crmhub.plugins.forms.connector import FormsConnector

__all__ = ["FormsConnector"]


@hookimpl
def crmhub_register_connectors(register):
    register(FormsConnector)
