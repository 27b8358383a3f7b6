"""The garbage collector paused for a replay: back on afterwards, and nothing leaked."""
import gc
import weakref

from crmhub.runtime.collector import collector_paused


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the collector frees it


def test_cycles_made_while_paused_are_freed_when_the_pause_ends():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        node = Node()
        gone = weakref.ref(node)
        del node
        for _ in range(50_000):  # far past the threshold of an automatic collection
            Node()
        assert gone() is not None  # no collection ran meanwhile
    assert gc.isenabled()
    assert gone() is None


def test_a_collector_turned_off_by_the_caller_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
