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


def RpcProxy(target_service: str, **options):  # noqa: N802 - reads like nameko's class
    options.setdefault("use_confirms", False)
    return nameko_rpc.RpcProxy(target_service, **options)


def unconfirmed_rpc_replies() -> None:
    """Make every RPC reply of this process unconfirmed (called once by the runner)."""
    nameko_rpc.Responder.publisher_cls = UnconfirmedPublisher
    # nameko publishes RPC requests as mandatory and warns that, without confirms, an
    # unroutable one goes unnoticed: by design here (the caller's timeout covers it).
    warnings.filterwarnings("ignore", message="Mandatory delivery was requested",
                            category=UserWarning)
