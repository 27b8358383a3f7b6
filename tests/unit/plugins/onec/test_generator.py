"""The exchange generator: what it writes reads back through the real reader, shaped like УТ 11."""
from collections import Counter
from decimal import Decimal

from crmhub.plugins.onec.commerceml import read_package
from crmhub.plugins.onec.generator import (
    NAMESPACE,
    default_price,
    default_quantities,
    main,
    product_id,
    write_exchange,
)
from crmhub.plugins.onec.xmlsafety import exchange_file_kind


def read(path) -> list:
    return list(read_package(path, kind_hint=exchange_file_kind(path.rsplit("/", 1)[-1])))


def of(records, kind) -> list:
    return [record for k, record in records if k == kind]


def test_full_exchange_round_trip(tmp_path):
    paths = write_exchange(tmp_path, 300, warehouses=3)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["import.xml", "offers.xml"]
    head = open(paths[0], "rb").read(300)
    assert head.startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>')
    assert f'xmlns="{NAMESPACE}"'.encode() in head and 'ВерсияСхемы="2.10"'.encode() in head

    catalog = read(paths[0])
    package = catalog[0][1]
    assert (package.kind, package.only_changes, package.schema_version) == ("import", False, "2.10")
    assert Counter(k for k, _ in catalog) == {"package": 1, "group": 20, "property": 3, "product": 300}
    groups = {g.id: g for g in of(catalog, "group")}
    assert sum(g.parent_id is None for g in groups.values()) == 4
    properties = {p.id: p for p in of(catalog, "property")}
    products = of(catalog, "product")
    assert [p.id for p in products] == [product_id(i) for i in range(300)]
    assert len({p.id for p in products}) == 300
    for product in products:
        assert groups[product.group_ids[0]].parent_id is not None     # goods sit in second-level groups
        assert all(value in properties[prop].values for prop, value in product.properties.items())
        assert (product.unit, product.unit_code) == ("шт", "796")
        assert product.requisites["ТипНоменклатуры"] == "Товар"
        assert product.requisites["Полное наименование"] == product.name
    assert any("&" in p.name and '"' in p.name for p in products)    # escaping survives the round trip

    offers = read(paths[1])
    assert offers[0][1].catalog_id == package.catalog_id and offers[0][1].kind == "offers"
    warehouses = [w.id for w in of(offers, "warehouse")]
    [price_type] = of(offers, "price_type")
    assert (price_type.name, price_type.currency, len(warehouses)) == ("Розничная", "RUB", 3)
    for i, offer in enumerate(of(offers, "offer")):
        product = products[i]
        assert (offer.id, offer.article, offer.name) == (product.id, product.article, product.name)
        assert offer.prices[0].amount == default_price(i)
        assert (offer.prices[0].price_type_id, offer.prices[0].unit) == (price_type.id, "шт")
        assert offer.stocks == tuple(zip(warehouses, map(str, default_quantities(i, 3))))
        assert Decimal(offer.quantity) == sum(Decimal(q) for _, q in offer.stocks)


def test_default_values_look_like_a_shop():
    quantities = [q for i in range(3000) for q in default_quantities(i, 2)]
    assert 0.15 < quantities.count(0) / len(quantities) < 0.25
    prices = [Decimal(default_price(i)) for i in range(3000)]
    assert min(prices) >= 50 and any(p != p.to_integral() for p in prices)


def test_split_exchange_like_2_10(tmp_path):
    paths = write_exchange(tmp_path, 50, split=True, seed=7)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["import.xml", "offers.xml", "prices.xml", "rests.xml"]
    offers, prices, rests = (read(p) for p in paths[1:])
    assert [r[1].kind for r in (offers[0], prices[0], rests[0])] == ["offers", "prices", "rests"]
    assert all(o.prices == () and o.stocks == () and o.name for o in of(offers, "offer"))
    assert [o.prices[0].amount for o in of(prices, "offer")] == [default_price(i, 7) for i in range(50)]
    warehouses = [w.id for w in of(rests, "warehouse")]
    assert [o.stocks for o in of(rests, "offer")] == [
        tuple(zip(warehouses, map(str, default_quantities(i, 2, 7)))) for i in range(50)]
    # kinds are also recognised without the file name
    assert [next(read_package(p))[1].kind for p in paths[1:]] == ["offers", "prices", "rests"]


def test_change_only_package_updates_earlier_products(tmp_path):
    full = write_exchange(tmp_path / "full", 100)
    delta = write_exchange(tmp_path / "delta", 10, only_changes=True, start=95, price_fn=lambda i: "12.50",
                           quantity_fn=lambda i, w: i + w)
    assert all(next(read_package(p))[1].only_changes for p in delta)
    assert not any(next(read_package(p))[1].only_changes for p in full)
    known = {p.id for p in of(read(full[0]), "product")}
    changed = of(read(delta[1]), "offer")
    assert [o.id for o in changed] == [product_id(i) for i in range(95, 105)]
    assert len({o.id for o in changed} & known) == 5
    assert {o.prices[0].amount for o in changed} == {"12.50"}
    assert [(o.quantity, [q for _, q in o.stocks]) for o in changed[:2]] == [("191", ["95", "96"]),
                                                                            ("193", ["96", "97"])]


def test_output_is_deterministic_per_seed(tmp_path):
    one = write_exchange(tmp_path / "a", 20, seed=1)
    two = write_exchange(tmp_path / "b", 20, seed=1)
    other = write_exchange(tmp_path / "c", 20, seed=2)
    assert [open(p, "rb").read() for p in one] == [open(p, "rb").read() for p in two]
    assert product_id(0, 1) != product_id(0, 2)
    ids = [{p.id for p in of(read(paths[0]), "product")} for paths in (one, other)]
    assert ids[0].isdisjoint(ids[1])


def test_cli(tmp_path, capsys):
    assert main([str(tmp_path), "--offers", "5", "--split", "--only-changes", "--start", "10"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    offers = of(read(str(tmp_path / "offers.xml")), "offer")
    assert [o.id for o in offers] == [product_id(i) for i in range(10, 15)]
