"""A parsing process of a big exchange file keeps its memory bounded, however many blocks
it parses."""
import gc

from crmhub.plugins.onec.generator import write_exchange
from crmhub.services.catalog import parallel, rangeparse


def _live_documents() -> int:
    return sum(1 for obj in gc.get_objects() if type(obj).__name__ == "_Document")


def test_parsed_block_documents_do_not_pile_up(tmp_path):
    write_exchange(tmp_path, 6000, warehouses=2)
    path = tmp_path / "offers.xml"
    plan = parallel.plan(path, "offers", 1, min_bytes=0)
    (start, end), = plan.ranges()
    parser = rangeparse.RangeParser("offers", plan.prefix, plan.suffix, plan.encoding, None, 0,
                                    frame=lambda header, payload=b"": None)
    reader = rangeparse.RangeReader(path, start, end, b"</" + plan.record.encode() + b">")
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # as when the few objects a parse makes never trigger a full collection
    try:
        before = _live_documents()
        for raw in reader:
            parser.record(raw)
        parser.finish()
        piled_up = _live_documents() - before
    finally:
        if was_enabled:
            gc.enable()
    assert parser.parsed == 6000
    blocks = parser.records // 256  # about: a block ends where an id hashes to 0 mod 256
    assert blocks >= 20 and end - start >= 6 * 2**20
    # Only the documents parsed since the last collection (about 2 MB of them) may wait for
    # the next one; without collections every block's document stayed.
    assert piled_up <= blocks // 2, (piled_up, blocks)
