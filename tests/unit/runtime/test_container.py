"""Every hub process runs its services in ``HubContainer``: a worker's objects go the moment
the worker ends, not at the garbage collector's next turn."""
import gc
import weakref

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_hook

from support import wait_for

SEEN = []


class WorkerBound(DependencyProvider):
    """Like an RPC proxy: the injected value keeps its worker context."""

    def get_dependency(self, worker_ctx):
        return {"worker": worker_ctx}


class Echo:
    name = "echo"
    bound = WorkerBound()

    @rpc
    def echo(self, text):
        SEEN.append(weakref.ref(self))
        return text


def test_a_finished_workers_service_instance_is_freed_without_a_collection(container_factory):
    container = container_factory(Echo, {"AMQP_URI": "memory://",
                                         "SERVICE_CONTAINER_CLS": "crmhub.runtime.runner.HubContainer"})
    container.start()
    gc.disable()
    try:
        with entrypoint_hook(container, "echo") as echo:
            assert echo("hi") == "hi"
        wait_for(lambda: SEEN[-1]() is None, timeout=5,
                 message="the worker's service instance freed by reference counting")
    finally:
        gc.enable()
