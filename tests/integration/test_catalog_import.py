"""Importing CommerceML into the catalog, on SQLite and on the real PostgreSQL: only what changed
is written and announced, full snapshots deactivate what they leave out, change-only packages
never do, and a refused file leaves the catalog as it was."""
import json
import shutil
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance
from crmhub.plugins.onec.generator import product_id, write_exchange
from crmhub.runtime.db import make_engine
from crmhub.services.catalog import importer, jobs, logic

SAMPLES = Path(__file__).parents[1] / "unit" / "plugins" / "onec" / "samples"


@pytest.fixture
def catalog(migrated_database):
    config = migrated_database("catalog")
    engine = make_engine(config, "catalog")
    yield Catalog(engine)
    engine.dispose()


class Catalog:
    def __init__(self, engine):
        self.engine = engine

    def import_(self, path: Path) -> dict:
        with self.engine.begin() as conn:
            job, _ = jobs.queue(conn, uuid.uuid4().hex, path.name, None, "test")
        return importer.import_file(self.engine, path, job)

    def products(self, **query) -> list[dict]:
        with self.engine.connect() as conn:
            return logic.search_products(conn, **{"limit": 200, **query})["items"]

    def outbox(self) -> list[tuple[str, dict]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT event_type, payload FROM outbox ORDER BY id")).all()
        return [(row.event_type, json.loads(row.payload)) for row in rows]

    def clear_outbox(self):
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM outbox"))

    def state(self) -> list[tuple]:
        """Everything a user sees of the catalog."""
        with self.engine.connect() as conn:
            return [tuple(row) for table in ("products", "offers", "prices", "stock")
                    for row in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2"))]


def stock_items(outbox) -> dict:
    return {(i["offer_id"], i["warehouse_id"]): i for kind, p in outbox if kind == ev.STOCK_CHANGED
            for i in p["items"]}


def test_real_1c_exports_become_products_with_price_and_stock(catalog):
    counts = catalog.import_(SAMPLES / "import0_1.xml")
    assert counts["products"] == counts["changed_products"] > 30
    counts = catalog.import_(SAMPLES / "offers0_1.xml")
    assert counts["offers"] == 44

    [item] = [p for p in catalog.products() if p["article"] and p["prices"]][:1]
    assert item["active"] and item["name"]
    price = item["prices"][0]
    assert price["price_type"] and Decimal(price["amount"]) > 0
    with catalog.engine.connect() as conn:
        warehouses = set(conn.execute(sa.text("SELECT name FROM warehouses")).scalars())
    assert item["stock"] and {s["warehouse"] for s in item["stock"]} <= warehouses
    in_stock = catalog.products(in_stock=True)
    assert in_stock and all(p["in_stock"] > 0 for p in in_stock)
    # Search by the beginning of the article, and by a part of the name in any case.
    assert item["id"] in [p["id"] for p in catalog.products(q=item["article"][:4])]
    word = next(w for w in item["name"].split() if len(w) >= 4 and not w.isascii())  # Cyrillic
    for asked in (word.upper(), word.lower()):
        assert item["id"] in [p["id"] for p in catalog.products(q=asked)], asked
    assert catalog.products(q="несуществующий товар") == []


def test_a_reimport_changes_nothing_and_announces_nothing(catalog, tmp_path):
    write_exchange(tmp_path, 300, warehouses=2)
    catalog.import_(tmp_path / "import.xml")
    first = catalog.import_(tmp_path / "offers.xml")
    assert (first["changed_offers"], first["changed_prices"], first["changed_stock"]) == (300, 300, 600)
    events = catalog.outbox()
    assert {kind for kind, _ in events} >= {ev.STOCK_CHANGED, ev.PRICE_CHANGED}
    assert len(stock_items(events)) == 600
    state = catalog.state()
    catalog.clear_outbox()

    again = catalog.import_(tmp_path / "offers.xml")
    assert {k: v for k, v in again.items() if k.startswith("changed") or k in ("arrivals", "deactivated")} \
        == dict.fromkeys(("changed_products", "changed_offers", "changed_prices", "changed_stock",
                          "arrivals", "deactivated"), 0)
    assert [kind for kind, _ in catalog.outbox()] == [ev.CATALOG_IMPORTED]
    assert catalog.state() == state


def test_a_change_only_package_updates_its_rows_and_deletes_nothing(catalog, tmp_path):
    full, delta = tmp_path / "full", tmp_path / "delta"
    write_exchange(full, 50, warehouses=2, quantity_fn=lambda i, w: 0)
    catalog.import_(full / "offers.xml")
    catalog.clear_outbox()
    # Offers 10..14 arrive at the first warehouse; the package lists only them.
    write_exchange(delta, 5, warehouses=2, only_changes=True, start=10,
                   quantity_fn=lambda i, w: 7 if w == 0 else 0)
    counts = catalog.import_(delta / "offers.xml")
    assert (counts["changed_stock"], counts["arrivals"], counts["deactivated"]) == (5, 5, 0)
    items = stock_items(catalog.outbox())
    assert len(items) == 5 and all(i["arrived"] and i["quantity"].startswith("7") and
                                   Decimal(i["previous"]) == 0 for i in items.values())
    assert all(i["product_id"] == i["offer_id"].split("#")[0] for i in items.values())
    assert len(catalog.products()) == 50  # nothing deactivated by absence
    assert len(catalog.products(in_stock=True)) == 5


def test_a_full_snapshot_deactivates_what_it_leaves_out(catalog, tmp_path):
    write_exchange(tmp_path / "a", 20, warehouses=1, quantity_fn=lambda i, w: 3)
    catalog.import_(tmp_path / "a" / "offers.xml")
    write_exchange(tmp_path / "b", 15, warehouses=1, quantity_fn=lambda i, w: 3)
    catalog.clear_outbox()
    counts = catalog.import_(tmp_path / "b" / "offers.xml")
    assert counts["deactivated"] == 5
    assert len(catalog.products()) == 15
    assert len(catalog.products(include_inactive=True)) == 20
    gone = stock_items(catalog.outbox())
    assert len(gone) == 5 and all(Decimal(i["quantity"]) == 0 and not i["arrived"] for i in gone.values())


def test_split_exchange_of_2_10_prices_and_rests_in_their_own_files(catalog, tmp_path):
    write_exchange(tmp_path, 30, warehouses=2, split=True, quantity_fn=lambda i, w: i % 3,
                   price_fn=lambda i: 100 + i)
    for name in ("import.xml", "offers.xml", "prices.xml", "rests.xml"):
        catalog.import_(tmp_path / name)
    products = {p["id"]: p for p in catalog.products(limit=100)}
    assert len(products) == 30
    amounts = sorted(Decimal(p["prices"][0]["amount"]) for p in products.values())
    assert amounts == [Decimal(100 + i) for i in range(30)]
    assert sum(p["in_stock"] for p in products.values()) == sum(2 * (i % 3) for i in range(30))


def test_change_events_load_with_their_contracts(catalog, tmp_path):
    write_exchange(tmp_path, 1500, warehouses=2)
    catalog.import_(tmp_path / "offers.xml")
    events = catalog.outbox()
    for kind, payload in events:
        loaded = instance(ev.spec(kind).schema).load(payload)
        assert loaded["event_id"] and loaded["occurred_at"].tzinfo is not None
    sizes = [len(p["items"]) for kind, p in events if kind == ev.STOCK_CHANGED]
    assert sorted(sizes) == [1000, 1000, 1000]
    assert len({p["event_id"] for _, p in events}) == len(events)


@pytest.mark.parametrize("breakage", ["truncated", "doctype", "not xml", "bad number"])
def test_a_refused_file_leaves_the_catalog_as_it_was(catalog, tmp_path, breakage):
    write_exchange(tmp_path / "good", 40, warehouses=2)
    catalog.import_(tmp_path / "good" / "offers.xml")
    state, outbox = catalog.state(), catalog.outbox()
    write_exchange(tmp_path / "next", 40, warehouses=2, quantity_fn=lambda i, w: 99)
    bad = tmp_path / "offers.xml"
    text = (tmp_path / "next" / "offers.xml").read_bytes()
    if breakage == "truncated":
        bad.write_bytes(text[: len(text) * 2 // 3])
    elif breakage == "doctype":
        bad.write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
                        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>')
    elif breakage == "not xml":
        bad.write_bytes(b"PK\x03\x04 this is no xml")
    else:
        bad.write_bytes(text.replace("<Количество>".encode(), "<Количество>много".encode(), 1))
    with pytest.raises(importer.ImportFailed) as refused:
        catalog.import_(bad)
    assert refused.value.reason.startswith("offers.xml: ")
    assert catalog.state() == state and catalog.outbox() == outbox


def test_windows_1251_and_namespace_variants_import_alike(catalog, tmp_path):
    write_exchange(tmp_path / "src", 10, warehouses=1)
    text = (tmp_path / "src" / "offers.xml").read_bytes().decode("utf-8-sig")
    cp1251 = tmp_path / "offers.xml"
    cp1251.write_bytes(text.replace('encoding="UTF-8"', 'encoding="windows-1251"')
                       .replace('xmlns="urn:1C.ru:commerceml_210"', "").encode("windows-1251"))
    counts = catalog.import_(cp1251)
    assert counts["offers"] == counts["changed_offers"] == 10
    assert all(p["name"] for p in catalog.products())


def test_the_import_process_marks_its_job_and_says_why_it_failed(catalog, tmp_path, migrated_database):
    config = {"DATABASE_URL": str(catalog.engine.url.render_as_string(hide_password=False))
              if catalog.engine.dialect.name == "postgresql" else "",
              "EXCHANGE_DIR": str(tmp_path)}
    if not config["DATABASE_URL"]:
        config["DATA_DIR"] = str(Path(catalog.engine.url.database).parent)
    session = "s" + uuid.uuid4().hex[:8]
    (tmp_path / session).mkdir()
    write_exchange(tmp_path / session, 5, warehouses=1)
    shutil.copy(tmp_path / session / "offers.xml", tmp_path / session / "offers_bad.xml")
    with open(tmp_path / session / "offers_bad.xml", "r+b") as fh:
        fh.truncate(600)
    with catalog.engine.begin() as conn:
        good, _ = jobs.queue(conn, session, "offers.xml", "offers", "1c")
        bad, _ = jobs.queue(conn, session, "offers_bad.xml", "offers", "1c")
    assert importer.run_job(config, good["id"]) == 0
    assert importer.run_job(config, bad["id"]) == 1
    assert importer.run_job(config, good["id"]) == 0  # already done: nothing happens
    with catalog.engine.connect() as conn:
        good, bad = jobs.load(conn, good["id"]), jobs.load(conn, bad["id"])
    assert (good["state"], good["counts"]["changed_offers"], good["read"]) == ("done", 5, 8)
    assert bad["state"] == "failed" and bad["error"].startswith("offers_bad.xml: ")
    announced = [p["job"] for kind, p in catalog.outbox() if kind == ev.CATALOG_IMPORTED]
    assert [(j["filename"], j["state"]) for j in announced] == [("offers.xml", "done"),
                                                                ("offers_bad.xml", "failed")]


@pytest.mark.parametrize("catalog_was_empty", [True, False])
def test_an_offer_given_twice_counts_as_its_last_occurrence(catalog, tmp_path, catalog_was_empty):
    if not catalog_was_empty:
        write_exchange(tmp_path / "before", 5, warehouses=1, quantity_fn=lambda i, w: 1)
        catalog.import_(tmp_path / "before" / "offers.xml")
    write_exchange(tmp_path / "src", 5, warehouses=1, quantity_fn=lambda i, w: 2)
    text = (tmp_path / "src" / "offers.xml").read_text(encoding="utf-8-sig")
    start, end = text.index("<Предложение>"), text.index("</Предложение>") + len("</Предложение>")
    again = text[start:end].replace('КоличествоНаСкладе="2"', 'КоличествоНаСкладе="9"')
    assert again != text[start:end]
    twice = tmp_path / "offers.xml"
    twice.write_text(text.replace("</Предложения>", again + "</Предложения>"), encoding="utf-8")
    catalog.import_(twice)
    quantities = sorted(p["in_stock"] for p in catalog.products())
    assert quantities == [Decimal(2)] * 4 + [Decimal(9)]


@pytest.mark.parametrize("broken", [False, True])
def test_a_big_file_is_read_by_several_processes_with_the_same_result(catalog, tmp_path, broken):
    """Forced onto the parallel path (a real one starts at 32 MB): three parsing processes."""
    if catalog.engine.dialect.name != "postgresql":
        pytest.skip("the parallel reader stages through COPY")
    write_exchange(tmp_path, 3000, warehouses=2, quantity_fn=lambda i, w: i % 5 + w)
    path = tmp_path / "offers.xml"
    if broken:  # a bad number in the last third: that process refuses the file
        text = path.read_bytes()
        start = text.rindex("КоличествоНаСкладе=\"".encode()) + len("КоличествоНаСкладе=\"".encode())
        path.write_bytes(text[:start] + b"x" + text[text.index(b'"', start):])
    with catalog.engine.begin() as conn:
        job, _ = jobs.queue(conn, uuid.uuid4().hex, path.name, None, "test")
    progress = importer.Progress()
    if broken:
        with pytest.raises(importer.ImportFailed) as refused:
            importer.import_file(catalog.engine, path, job, progress, workers=3, parallel_from=0)
        assert "'x'" in refused.value.reason and catalog.products() == []
        return
    counts = importer.import_file(catalog.engine, path, job, progress, workers=3, parallel_from=0)
    assert (counts["offers"], counts["changed_prices"], counts["changed_stock"]) == (3000, 3000, 6000)
    assert progress.bytes_read == progress.bytes_total == path.stat().st_size
    sample = [0, 999, 1000, 1999, 2000, 2999]  # both sides of the cuts
    found = {p["id"]: p["in_stock"] for p in catalog.products(ids=[product_id(i) for i in sample])}
    assert found == {product_id(i): Decimal(2 * (i % 5) + 1) for i in sample}
    assert len(stock_items(catalog.outbox())) == 6000


def parallel_import(catalog, path: Path) -> dict:
    """An import on the parallel path (three parsing processes), as a big file gets."""
    with catalog.engine.begin() as conn:
        job, _ = jobs.queue(conn, uuid.uuid4().hex, path.name, None, "test")
    return importer.import_file(catalog.engine, path, job, workers=3, parallel_from=0)


def test_sending_a_big_file_again_parses_only_the_records_that_changed(catalog, tmp_path):
    if catalog.engine.dialect.name != "postgresql":
        pytest.skip("the parallel reader stages through COPY")
    write_exchange(tmp_path / "v1", 3000, warehouses=2, quantity_fn=lambda i, w: 5)
    v1 = tmp_path / "v1" / "offers.xml"
    assert parallel_import(catalog, v1)["unchanged"] == 0
    state = catalog.state()
    again = parallel_import(catalog, v1)
    assert (again["unchanged"], again["changed_stock"], again["changed_prices"]) == (3000, 0, 0)
    assert catalog.state() == state

    # Offer 7 arrives elsewhere, offer 2999 leaves the (full) file: only they change, and
    # only the blocks around them (and around the cuts, which move) are parsed.
    write_exchange(tmp_path / "v2", 2999, warehouses=2,
                   quantity_fn=lambda i, w: 9 if (i, w) == (7, 1) else 5)
    catalog.clear_outbox()
    v2 = parallel_import(catalog, tmp_path / "v2" / "offers.xml")
    assert (v2["changed_stock"], v2["deactivated"]) == (1 + 2, 1)
    assert v2["unchanged"] >= 1500
    changes = stock_items(catalog.outbox())
    assert {(k[0], i["quantity"]) for k, i in changes.items()} == {
        (product_id(7), "9.000"), (product_id(2999), "0.000")}
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM offers WHERE active")).scalar() == 2999

    # A small package changes offer 3 on the sequential path; the big file then puts it back.
    write_exchange(tmp_path / "delta", 1, warehouses=2, only_changes=True, start=3,
                   quantity_fn=lambda i, w: 1)
    catalog.import_(tmp_path / "delta" / "offers.xml")
    back = parallel_import(catalog, tmp_path / "v2" / "offers.xml")
    assert (back["unchanged"], back["changed_stock"]) == (0, 2)  # a new generation: all parsed
    [offer] = catalog.products(ids=[product_id(3)])
    assert offer["in_stock"] == Decimal(10)


def test_a_warm_import_process_imports_the_jobs_it_is_handed_one_after_the_other(catalog, tmp_path):
    """What the catalog service runs: job ids on the stdin of one import process."""
    import subprocess

    from crmhub.services.catalog.service import importer_command, importer_env

    url = catalog.engine.url
    config = {"EXCHANGE_DIR": str(tmp_path / "exchange")}
    if url.get_backend_name() == "postgresql":
        config["DATABASE_URL"] = url.set(drivername="postgresql").render_as_string(hide_password=False)
    else:
        config["DATA_DIR"] = str(Path(url.database).parent)
    session = "warm" + uuid.uuid4().hex[:8]
    folder = tmp_path / "exchange" / session
    write_exchange(folder, 20, warehouses=1)
    (folder / "offers_broken.xml").write_bytes((folder / "offers.xml").read_bytes()[:900])
    with catalog.engine.begin() as conn:
        queued = [jobs.queue(conn, session, name, None, "1c")[0]["id"]
                  for name in ("import.xml", "offers_broken.xml", "offers.xml")]
    proc = subprocess.Popen(importer_command(), stdin=subprocess.PIPE, env=importer_env(config))
    proc.communicate("".join(f"{job_id}\n" for job_id in queued).encode(), timeout=60)
    assert proc.returncode == 0
    with catalog.engine.connect() as conn:
        states = [jobs.load(conn, job_id)["state"] for job_id in queued]
    assert states == ["done", "failed", "done"]  # a refused file does not stop the next one
    assert len(catalog.products()) == 20
