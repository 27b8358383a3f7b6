"""RPC without publisher confirms, and with a deadline.

An RPC request or reply is transient: if the broker loses it, the caller times out and
decides what to do. A confirm per message costs a broker round trip on every call, which is
most of an RPC's latency here, so crmhub's RPC proxies and replies go unconfirmed. Events,
which must not be lost, keep confirms (see messaging.ConfirmingPublisher).

A call whose answer does not come within ``RPC_TIMEOUT_SECONDS`` (the service is stopped,
or stuck) raises ``Unavailable``: the gateway answers 503, an event handler is retried later,
and neither holds a worker forever.
"""
import warnings

import eventlet
from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher

from crmhub.contracts.errors import Unavailable

DEFAULT_TIMEOUT_SECONDS = 30


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


class TimedReply:
    """An RPC's pending answer; ``result()`` waits for it until the deadline."""

    def __init__(self, reply: nameko_rpc.RpcReply, proxy: "TimedMethodProxy"):
        self.reply, self.proxy = reply, proxy

    def result(self):
        seconds = float(self.proxy.container.config.get("RPC_TIMEOUT_SECONDS")
                        or DEFAULT_TIMEOUT_SECONDS)
        with eventlet.Timeout(seconds, False):
            return self.reply.result()
        # No answer: forget the call, so a late reply finds nobody waiting and nothing leaks.
        pending = self.proxy.reply_listener._reply_events
        for correlation_id, event in list(pending.items()):
            if event is self.reply.reply_event:
                del pending[correlation_id]
        raise Unavailable(f"the {self.proxy.service_name} service did not answer "
                          f"{self.proxy.method_name} within {seconds:g} s")


class TimedMethodProxy(nameko_rpc.MethodProxy):
    publisher_cls = RequestPublisher

    def _call(self, *args, **kwargs):
        # A worker may run while its container is still starting (an eager timer): the
        # answer's queue is consumed only once the container's queue consumer is ready, and
        # an answer sent before that is dropped (the call would wait out its timeout).
        self.reply_listener.queue_consumer._consumers_ready.wait()
        return TimedReply(super()._call(*args, **kwargs), self)


class TimedServiceProxy(nameko_rpc.ServiceProxy):
    def __getattr__(self, name):
        return TimedMethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener,
                                **self.options)


class TimedRpcProxy(nameko_rpc.RpcProxy):
    def get_dependency(self, worker_ctx):
        return TimedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener,
                                 **self.options)


def RpcProxy(target_service: str, **options):  # noqa: N802 - reads like nameko's class
    options.setdefault("use_confirms", False)
    return TimedRpcProxy(target_service, **options)


def unconfirmed_rpc_replies() -> None:
    """Make every RPC reply of this process unconfirmed (called once by the runner)."""
    nameko_rpc.Responder.publisher_cls = UnconfirmedPublisher
    # nameko publishes RPC requests as mandatory and warns that, without confirms, an
    # unroutable one goes unnoticed: by design here (the caller's timeout covers it).
    warnings.filterwarnings("ignore", message="Mandatory delivery was requested",
                            category=UserWarning)
