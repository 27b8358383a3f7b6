"""RPC without publisher confirms.

An RPC request or reply is transient: if the broker loses it, the caller times out and
decides what to do. A confirm per message costs a broker round trip on every call, which is
most of an RPC's latency here, so crmhub's RPC proxies and replies go unconfirmed. Events,
which must not be lost, keep confirms (see messaging.ConfirmingPublisher).
"""
import warnings

from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher


class UnconfirmedPublisher(Publisher):
    use_confirms = False


class RequestPublisher(Publisher):
    """Publishes RPC requests. Unconfirmed ones are not mandatory: without a confirm to wait
    for, the broker's return of a request nobody listens to arrives after the call has moved
    on, and the pooled channel would raise it in the next, unrelated call (a call to a running
    service failing as "unknown"). A request to a service that is not running now simply
    goes unanswered, and the caller's timeout says so."""

    def publish(self, payload, **kwargs):
        if not kwargs.get("use_confirms", self.use_confirms):
            kwargs["mandatory"] = False
        return super().publish(payload, **kwargs)


def RpcProxy(target_service: str, **options):  # noqa: N802 - reads like nameko's class
    options.setdefault("use_confirms", False)
    return nameko_rpc.RpcProxy(target_service, **options)


def unconfirmed_rpc_replies() -> None:
    """Make every RPC reply of this process unconfirmed (called once by the runner)."""
    nameko_rpc.Responder.publisher_cls = UnconfirmedPublisher
    nameko_rpc.MethodProxy.publisher_cls = RequestPublisher
    # nameko publishes RPC requests as mandatory and warns that, without confirms, an
    # unroutable one goes unnoticed: by design here (the caller's timeout covers it).
    warnings.filterwarnings("ignore", message="Mandatory delivery was requested",
                            category=UserWarning)
