"""Event, message and row ids: cut from a pool of kernel randomness, unique also across a
fork (a forked worker repeating its parent's ids would have its events dropped as
duplicates)."""
import os
import re

import pytest

from crmhub.contracts.base import new_hex_id


def test_ids_are_32_hex_characters_and_do_not_repeat():
    ids = [new_hex_id() for _ in range(100_000)]
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids[:1000])
    assert len(set(ids)) == len(ids)


# The child only makes ids and exits: eventlet's warning about forking does not apply.
@pytest.mark.filterwarnings("ignore:Using fork")
def test_a_forked_child_makes_other_ids_than_its_parent():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write_end, "".join(new_hex_id() for _ in range(4)).encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 1024).decode()
    os.waitpid(pid, 0)
    parent = "".join(new_hex_id() for _ in range(4))
    assert len(child) == len(parent) == 128
    assert child != parent
