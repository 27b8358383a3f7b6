"""The streaming CommerceML reader on real 1C exports and on the variants real shops produce."""
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from crmhub.plugins.onec.commerceml import (
    BadRecord,
    Group,
    Offer,
    Package,
    Price,
    PriceType,
    Warehouse,
    read_package,
)
from crmhub.plugins.onec.xmlsafety import BrokenXml, UnsafeXml

SAMPLES = Path(__file__).parent / "samples"
CARONO_CATALOG = "07cfe53d-5145-4c4e-a81c-899be39cc5bd"
DOBRO_CATALOG = "b21db898-7f82-46d8-a5ca-7c4f1d200a13"


def read(path, **kw) -> list:
    return list(read_package(path, **kw))


def of(records, kind) -> list:
    return [record for k, record in records if k == kind]


def write(tmp_path, text: str, name="offers.xml", bom=True) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def package_xml(offers: str, ns=' xmlns="urn:1C.ru:commerceml_210"', changes="true", version="2.10") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация{ns} ВерсияСхемы="{version}">'
            f'<ПакетПредложений СодержитТолькоИзменения="{changes}"><Ид>cat#</Ид><ИдКаталога>cat</ИдКаталога>'
            f"<Предложения>{offers}</Предложения></ПакетПредложений></КоммерческаяИнформация>")


def test_import_with_classifier_groups_properties_and_products():
    records = read(SAMPLES / "import.xml")
    assert records[0] == ("package", Package("import", False, CARONO_CATALOG, CARONO_CATALOG, "2.07"))
    assert Counter(kind for kind, _ in records) == {"package": 1, "group": 22, "property": 10, "product": 2}
    groups = of(records, "group")
    assert groups[2:4] == [
        Group("453d6e1a-7233-11e0-8636-0011951d229d", None, "Бытовая техника"),
        Group("f3257ce7-9c2f-11e1-a282-0011955bd175", "453d6e1a-7233-11e0-8636-0011951d229d",
              "Бытовая техника с учетом серий, гарантия 12 мес.")]
    seen = set()
    for group in groups:   # parents always come before their children
        assert group.parent_id is None or group.parent_id in seen
        seen.add(group.id)
    properties = {p.name: p for p in of(records, "property")}
    assert properties["Производитель"].values["444bbebb-6b18-11e0-9819-e0cb4ed5eed4"] == 'АОЗТ "Бакалея"'
    assert len(properties["Вкус"].values) == 61 and properties["Основной поставщик"].values == {}
    boots = of(records, "product")[0]
    assert (boots.id, boots.barcode, boots.article, boots.name) == (
        "bd72d910-55bc-11d9-848a-00112f43529a", "2000018987155", "Б-130001", "Женские ботфорты коричневые")
    assert (boots.unit, boots.unit_code, boots.deleted, boots.description) == \
        ("Пара (2 шт.)", "715", False, None)
    assert boots.group_ids == ("e5a4c309-a659-11dd-acee-0015e9b8c48d",)
    assert boots.properties["bb14a4b8-6b17-11e0-9819-e0cb4ed5eed4"] == "444bbea3-6b18-11e0-9819-e0cb4ed5eed4"
    assert properties["Производитель"].values[boots.properties["bb14a4b8-6b17-11e0-9819-e0cb4ed5eed4"]] == \
        "Обувной комбинат"
    assert boots.properties["444bbea0-6b18-11e0-9819-e0cb4ed5eed4"] == "ООО Рога и копыта"
    assert boots.requisites["ВидНоменклатуры"] == "Обувь" and boots.requisites["ТипНоменклатуры"] == "Товар"
    assert boots.images[0] == \
        "import_files/9d/9da00149441011e19bb10015174048b8_0e01fd9e204611e8b2a794de807044d1.jpg"
    assert len(boots.images) == 3


def test_import_without_classifier():
    records = read(SAMPLES / "import_wo_classifier.xml")
    assert [kind for kind, _ in records] == ["package", "product", "product"]
    assert records[0][1].only_changes is False


def test_package_mode_import_with_a_deleted_product_and_trailing_space_unit_code():
    records = read(SAMPLES / "import0_1.xml", kind_hint="import")
    assert records[0][1] == Package("import", False, DOBRO_CATALOG, DOBRO_CATALOG, "2.07")
    products = of(records, "product")
    assert len(products) == 36 and len(of(records, "property")) == 12
    assert of(records, "group") == [Group("82cfb8dc-18f9-11e7-80c2-0cc47ab29cd1", None, "Коврики для дома")]
    assert {p.unit_code for p in products} == {"796"}            # the file says Код="796 "
    assert {p.unit for p in products} == {"Штука"}
    assert [p.id for p in products if p.deleted] == ["b631c9c1-49de-11e9-80c9-0cc47ab29cd1"]
    assert products[0].properties["38409b0c-29da-11e9-80c9-0cc47ab29cd1"] == "1,4"   # raw, caller converts


def test_offers_with_characteristics_take_prices_from_cena_za_edinicu():
    records = read(SAMPLES / "offers.xml")
    assert records[0] == ("package", Package("offers", False, CARONO_CATALOG, CARONO_CATALOG, "2.07"))
    assert of(records, "price_type") == [
        PriceType("bb14a3a4-6b17-11e0-9819-e0cb4ed5eed4", "Розничная", "RUB")]
    assert len(of(records, "warehouse")) == 5
    assert of(records, "warehouse")[3] == Warehouse("649efb01-6c6e-11de-b4b4-00195b6993ba",
                                                    'Магазин "Детские товары". Воронеж')
    first = of(records, "offer")[0]
    assert first == Offer(
        id="bd72d910-55bc-11d9-848a-00112f43529a#90c55447-d3a8-11e4-9423-e0cb4ed5eed4",
        product_id="bd72d910-55bc-11d9-848a-00112f43529a",
        characteristic_id="90c55447-d3a8-11e4-9423-e0cb4ed5eed4",
        article="Б-130001", name="Женские ботфорты коричневые (38)",
        characteristics=(("Размер", "40"), ("Тип кожи", "натуральная кожа"), ("Цвет", "Коричневый")),
        # ЦенаЗаЕдиницу, not Представление " 1 719 RUB за пара"
        prices=(Price("bb14a3a4-6b17-11e0-9819-e0cb4ed5eed4", "1719", "RUB", None),),
        quantity="20", stocks=(("b6112590-41ba-11dd-ac9d-0015e9b8c48d", "20"),), deleted=False)
    assert [o.characteristic_id is not None for o in of(records, "offer")] == [True] * 5


def test_package_mode_offers_with_three_warehouses():
    records = read(SAMPLES / "offers0_1.xml")
    offers = of(records, "offer")
    assert len(offers) == 44 and len(of(records, "warehouse")) == 3
    assert of(records, "price_type")[0].name == "BASE"
    assert offers[0].stocks == (("6abdb0b5-18fd-11e7-80c2-0cc47ab29cd1", "1"),
                                ("d2a52d49-19c9-11e7-80c2-0cc47ab29cd1", "0"),
                                ("dd306af1-19c9-11e7-80c2-0cc47ab29cd1", "376"))
    assert offers[0].prices == (Price("279b6812-740b-11e8-80c8-0cc47ab29cd1", "100", "RUB", "PCE"),)
    for offer in offers:   # Количество is the sum over warehouses in this export
        assert Decimal(offer.quantity) == sum(Decimal(q) for _, q in offer.stocks)


def test_records_come_in_document_order_with_the_package_first():
    records = read(SAMPLES / "offers.xml")
    assert [kind for kind, _ in records] == ["package", "price_type"] + ["warehouse"] * 5 + ["offer"] * 5


@pytest.mark.parametrize("ns", ["urn:1C.ru:commerceml_2", "urn:1C.ru:commerceml_210", None])
@pytest.mark.parametrize("bom", [True, False])
def test_namespace_and_bom_do_not_matter(tmp_path, ns, bom):
    text = (SAMPLES / "offers.xml").read_bytes().decode("utf-8-sig")
    text = text.replace(' xmlns="urn:1C.ru:commerceml_2"', f' xmlns="{ns}"' if ns else "")
    assert read(write(tmp_path, text, bom=bom)) == read(SAMPLES / "offers.xml")


def test_split_exchange_prices_and_rests_files(tmp_path):
    prices = package_xml("<Предложение><Ид>p1</Ид><Цены><Цена>"
                         "<Представление>1 234,50 руб. за шт</Представление><ИдТипаЦены>t1</ИдТипаЦены>"
                         "<ЦенаЗаЕдиницу>1\u00a0234,50</ЦенаЗаЕдиницу><Валюта>руб</Валюта></Цена>"
                         "<Цена><ИдТипаЦены>t2</ИдТипаЦены><ЦенаЗаЕдиницу> 99.9 </ЦенаЗаЕдиницу></Цена>"
                         "</Цены></Предложение>")
    records = read(write(tmp_path, prices, "prices.xml"))
    assert records[0][1] == Package("prices", True, "cat", None, "2.10")
    assert of(records, "offer")[0].prices == (Price("t1", "1234.50", "руб", None),
                                              Price("t2", "99.9", None, None))

    rests = package_xml("<Предложение><Ид>p1#c1</Ид><Остатки>"
                        "<Остаток><Склад><Ид>w1</Ид><Количество>3</Количество></Склад></Остаток>"
                        "<Остаток><Склад><Ид>w2</Ид><Количество>-1,5</Количество></Склад></Остаток>"
                        "</Остатки></Предложение><Предложение><Ид>p2</Ид><Остатки>"
                        "<Остаток><Количество>7</Количество></Остаток></Остатки></Предложение>")
    records = read(write(tmp_path, rests, "rests.xml"))
    assert records[0][1].kind == "rests"
    first, second = of(records, "offer")
    assert (first.product_id, first.characteristic_id) == ("p1", "c1")
    assert first.stocks == (("w1", "3"), ("w2", "-1.5"))
    assert second.stocks == (("", "7"),)    # no warehouse: the total over all of them
    assert read(write(tmp_path, rests, "x.xml"), kind_hint="offers")[0][1].kind == "offers"


def test_deletion_marks_and_full_snapshot_flag(tmp_path):
    text = package_xml("<Предложение><Ид>a</Ид><ПометкаУдаления>true</ПометкаУдаления>"
                       '<Наименование>A</Наименование></Предложение><Предложение Статус="Удален"><Ид>b</Ид>'
                       "</Предложение>"
                       "<Предложение><Ид>c</Ид><ПометкаУдаления>false</ПометкаУдаления></Предложение>",
                       changes="false")
    records = read(write(tmp_path, text))
    assert records[0][1].only_changes is False
    assert [(o.id, o.deleted) for o in of(records, "offer")] == [("a", True), ("b", True), ("c", False)]


def test_classifier_only_import_is_a_delta(tmp_path):
    text = ('<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="2.08">'
            "<Классификатор><Ид>k</Ид><Группы><Группа><Ид>g1</Ид><Наименование>Все</Наименование><Группы><Группа><Ид>g2</Ид>"
            "<Наименование>Часть</Наименование><Группы><Группа><Ид>g3</Ид></Группа></Группы></Группа></Группы>"
            "</Группа></Группы><Свойства><СвойствоНоменклатуры><Ид>p</Ид><Наименование>Цвет</Наименование>"
            "</СвойствоНоменклатуры></Свойства></Классификатор></КоммерческаяИнформация>")
    records = read(write(tmp_path, text, "import.xml"))
    assert records[0] == ("package", Package("import", True, None, "k", "2.08"))
    assert of(records, "group") == [Group("g1", None, "Все"), Group("g2", "g1", "Часть"),
                                    Group("g3", "g2", None)]
    assert of(records, "property")[0].name == "Цвет"


def test_orders_file_lines_are_not_catalog_products():
    records = read(SAMPLES / "orders.xml")    # windows-1251, no namespace
    assert [kind for kind, _ in records] == ["package"]


@pytest.mark.parametrize("value", ["", "12a", "1e5", "NaN", "--1", "٣"])
def test_non_numbers_are_bad_records_naming_the_offer(tmp_path, value):
    text = package_xml(f"<Предложение><Ид>good</Ид><Количество>1</Количество></Предложение>"
                       f"<Предложение><Ид>bad-one</Ид><Цены><Цена><ЦенаЗаЕдиницу>{value}</ЦенаЗаЕдиницу></Цена></Цены>"
                       "</Предложение>")
    got = []
    with pytest.raises(BadRecord, match="bad-one"):
        for kind, record in read_package(write(tmp_path, text)):
            got.append(record)
    assert got[-1].id == "good"


def test_bad_stock_attribute_and_missing_ids_are_bad_records(tmp_path):
    text = package_xml('<Предложение><Ид>x</Ид><Склад ИдСклада="w" КоличествоНаСкладе="много"/>'
                       "</Предложение>")
    with pytest.raises(BadRecord, match="КоличествоНаСкладе 'много' of x"):
        read(write(tmp_path, text))
    with pytest.raises(BadRecord, match="no Ид"):
        read(write(tmp_path, package_xml("<Предложение><Наименование>?</Наименование></Предложение>")))


@pytest.mark.parametrize("text", ["<html><body>Товар</body></html>", "<КоммерческаяИнформацияX/>",
                                  '<Каталог xmlns="urn:1C.ru:commerceml_2"><Товары><Товар><Ид>1</Ид></Товар>'
                                  "</Товары></Каталог>"])
def test_other_roots_are_refused(tmp_path, text):
    with pytest.raises(BadRecord, match="root element"):
        read(write(tmp_path, text))


def test_unsafe_and_broken_files_surface_as_exchange_errors(tmp_path):
    doctype = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>'
    with pytest.raises(UnsafeXml):
        read(write(tmp_path, doctype))
    data = (SAMPLES / "offers.xml").read_bytes()
    (tmp_path / "cut.xml").write_bytes(data[:-200])
    got = []
    with pytest.raises(BrokenXml):
        for kind, _ in read_package(tmp_path / "cut.xml"):
            got.append(kind)
    assert got.count("offer") == 4
