"""1C:Enterprise exchange (CommerceML 2.x, PROTOCOLS.md §3): safe file handling, a streaming catalog
reader, orders for ``type=sale`` and a generator of realistic exchange packages for tests and benchmarks."""
