"""The operator web UI, served by the gateway at ``/``."""


class OperatorUi:
    """HTTP entrypoints of the operator UI; mixed into GatewayService."""
