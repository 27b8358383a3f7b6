"""CommerceML 2 orders (``type=sale``): the ``mode=query`` answer we build and the ``mode=file``
uploads we read, checked against real files from public projects (samples/SOURCES.md)."""
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from crmhub.plugins.onec.orders import (
    MAX_FILE_BYTES,
    BadOrdersFile,
    orders_document,
    read_order_changes,
)

SAMPLES = Path(__file__).parent / "samples"
DECLARATION = b'<?xml version="1.0" encoding="windows-1251"?>'
WHEN = datetime(2024, 5, 6, 17, 4, 36)


def order(**changes) -> dict:
    base = {
        "id": "deal-7",
        "number": "A-7",
        "created_at": datetime(2024, 5, 6, 9, 30, 5),
        "currency": "RUB",
        "amount": Decimal("1234.5"),
        "comment": "Позвонить после 18:00",
        "status": "Новый",
        "manager": "Ольга",
        "client": {"id": "card-1", "name": "Иван Петров", "phones": ["+79001234567"], "emails": ["i@p.ru"]},
        "lines": [
            {"product_id": "cbcf498f-55bc#0a1b", "sku": "MX-77", "name": "Комбайн", "quantity": "1.50",
             "price": "100"},
            {"product_id": None, "sku": "BAG-2", "name": "Пакет", "quantity": Decimal("2.000"),
             "price": "5.5"},
        ],
    }
    return base | changes


def names(element) -> list[str]:
    return [etree.QName(child).localname for child in element]


def requisite(element, name: str) -> str:
    for item in element.iterfind("ЗначенияРеквизитов/ЗначениеРеквизита"):
        if item.findtext("Наименование") == name:
            return item.findtext("Значение")
    raise KeyError(name)


# --- real files ------------------------------------------------------------------------------


def test_reads_the_carono_orders_sample():
    [change] = read_order_changes(SAMPLES / "orders.xml")  # windows-1251, 2.03, a Path
    assert (change.order_id, change.number, change.amount) == ("20", "20", "9683.42")
    assert change.status == "[F] Доставлен" and change.status_id is None
    assert (change.paid, change.cancelled, change.shipped, change.deleted) == (True, False, None, False)
    assert change.erp_number is None and change.operation == "Заказ товара"
    assert change.requisites["Номер платежного документа"] == "ТК000000026"
    assert "ВидНоменклатуры" not in change.requisites  # product requisites stay with the product


def test_reads_the_bitrix_query_answer():
    changes = read_order_changes((SAMPLES / "bitrix-query-response-full.xml").read_bytes())
    assert [(c.order_id, c.number, c.amount) for c in changes] == [
        ("132", "132", "231.7400"),
        ("133", "133", "14380.5800"),
    ]
    first = changes[0]
    assert first.status == "[N] Принят, ожидается оплата" and first.status_id == "N"
    assert (first.paid, first.cancelled, first.deleted) == (False, False, False)
    assert first.requisites["Комментарии покупателя"] == "Я повелитель порошочков"
    assert "НомерПозицииКорзины" not in first.requisites


def test_reads_the_empty_bitrix_answer():
    assert read_order_changes(str(SAMPLES / "bitrix-query-response-empty.xml")) == []


def test_reads_what_1c_sends_back():
    """UTF-8 with BOM, a namespace, a 2.08 Контейнер and the requisites 1C's site exchange writes;
    "T" is how 1C writes an empty date."""
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_210" ВерсияСхемы="2.08">
 <Контейнер><Документ>
  <Ид>deal-7</Ид><Номер>A-7</Номер><ХозОперация>Заказ товара</ХозОперация><Сумма>1 234,5</Сумма>
  <ПометкаУдаления>false</ПометкаУдаления>
  <ЗначенияРеквизитов>
   <ЗначениеРеквизита><Наименование>Номер по 1С</Наименование><Значение>ТД-000123</Значение>
   </ЗначениеРеквизита>
   <ЗначениеРеквизита><Наименование>Проведен</Наименование><Значение>true</Значение></ЗначениеРеквизита>
   <ЗначениеРеквизита><Наименование>Дата оплаты по 1С</Наименование><Значение>2024-05-07T10:00:00</Значение>
   </ЗначениеРеквизита>
   <ЗначениеРеквизита><Наименование>Дата отгрузки по 1С</Наименование><Значение>T</Значение>
   </ЗначениеРеквизита>
   <ЗначениеРеквизита><Наименование>Отменён</Наименование><Значение>Нет</Значение></ЗначениеРеквизита>
   <ЗначениеРеквизита><Наименование>Статус заказа ИД</Наименование><Значение>P</Значение></ЗначениеРеквизита>
  </ЗначенияРеквизитов>
 </Документ></Контейнер>
 <Документ><Ид>old-1</Ид><Номер>5</Номер>
  <ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>ПометкаУдаления</Наименование>
   <Значение>true</Значение></ЗначениеРеквизита>
   <ЗначениеРеквизита><Наименование>Отгружен</Наименование><Значение>true</Значение></ЗначениеРеквизита>
  </ЗначенияРеквизитов></Документ>
</КоммерческаяИнформация>"""
    first, second = read_order_changes(b"\xef\xbb\xbf" + xml.encode("utf-8"))
    assert (first.order_id, first.number, first.erp_number) == ("deal-7", "A-7", "ТД-000123")
    assert first.amount == "1234.5"  # "1 234,5": spaces and a decimal comma tolerated
    assert (first.paid, first.shipped, first.cancelled, first.posted) == (True, None, False, True)
    assert first.deleted is False
    assert first.status == first.status_id == "P"
    assert (second.order_id, second.deleted, second.shipped, second.status, second.amount) == (
        "old-1", True, True, None, None)


# --- our answer to mode=query ----------------------------------------------------------------


def test_answer_is_windows_1251_with_the_sites_declaration():
    body = orders_document([order()], generated_at=WHEN)
    assert body.startswith(DECLARATION + b"\n")
    body.decode("cp1251")  # every byte is windows-1251
    root = etree.fromstring(body)
    assert root.tag == "КоммерческаяИнформация"
    assert root.get("ДатаФормирования") == "2024-05-06T17:04:36"


def test_answer_has_the_shape_of_bitrixs():
    bitrix = etree.parse(str(SAMPLES / "bitrix-query-response-full.xml")).getroot()
    ours = etree.fromstring(orders_document([order()], generated_at=WHEN))
    assert list(ours.attrib) == list(bitrix.attrib) and ours.get("ВерсияСхемы") == "2.05"

    def paths(root) -> set[str]:
        tree = root.getroottree()
        return {tree.getpath(e).translate(str.maketrans("", "", "0123456789[]")) for e in root.iter()}

    # ИдКаталога, АдресРегистрации and cart properties are Bitrix's own; the rest is the common ground.
    skeleton = {p for p in paths(bitrix) if "ИдКаталога" not in p and "АдресРегистрации" not in p}
    assert skeleton <= paths(ours)
    [doc] = ours.iterfind("Документ")
    assert names(doc) == names(bitrix.find("Документ"))  # same children, in the same order


def test_answer_fields():
    [doc] = etree.fromstring(orders_document([order()], generated_at=WHEN)).iterfind("Документ")
    assert [doc.findtext(n) for n in ("Ид", "Номер", "Дата", "Время", "Валюта", "Курс", "Сумма")] == [
        "deal-7", "A-7", "2024-05-06", "09:30:05", "RUB", "1", "1234.50"]
    assert (doc.findtext("ХозОперация"), doc.findtext("Роль")) == ("Заказ товара", "Продавец")
    agent = doc.find("Контрагенты/Контрагент")
    assert [agent.findtext(n) for n in ("Ид", "Наименование", "Роль", "ПолноеНаименование")] == [
        "card-1", "Иван Петров", "Покупатель", "Иван Петров"]
    assert [(c.findtext("Тип"), c.findtext("Значение")) for c in agent.iterfind("Контакты/Контакт")] == [
        ("ТелефонРабочий", "+79001234567"), ("Почта", "i@p.ru")]
    first, second = doc.iterfind("Товары/Товар")
    assert [first.findtext(n) for n in ("Ид", "Артикул", "ЦенаЗаЕдиницу", "Количество", "Сумма")] == [
        "cbcf498f-55bc#0a1b", "MX-77", "100.00", "1.5", "150.00"]
    assert [second.findtext(n) for n in ("Ид", "Количество", "Сумма")] == ["BAG-2", "2", "11.00"]
    unit = first.find("БазоваяЕдиница")
    assert (unit.text, unit.get("Код"), unit.get("НаименованиеПолное")) == ("шт", "796", "Штука")
    assert requisite(first, "ВидНоменклатуры") == requisite(first, "ТипНоменклатуры") == "Товар"
    assert requisite(doc, "Статус заказа") == "Новый" and requisite(doc, "Менеджер") == "Ольга"
    assert requisite(doc, "Заказ оплачен") == requisite(doc, "Отменен") == "false"


def test_amount_defaults_to_the_lines_and_unknown_client_name_to_the_phone():
    body = orders_document([order(amount=None, client={"id": "c", "phones": ["+7900"], "emails": []})],
                           generated_at=WHEN)
    doc = etree.fromstring(body).find("Документ")
    assert doc.findtext("Сумма") == "161.00"
    assert doc.findtext("Контрагенты/Контрагент/Наименование") == "+7900"


def test_answer_round_trips_through_the_reader():
    orders = [order(), order(id="deal-8", number="A-8", amount="0.5", status="Отгружен", lines=[])]
    changes = read_order_changes(orders_document(orders, generated_at=WHEN))
    assert [(c.order_id, c.number, Decimal(c.amount), c.status) for c in changes] == [
        ("deal-7", "A-7", Decimal("1234.5"), "Новый"),
        ("deal-8", "A-8", Decimal("0.5"), "Отгружен"),
    ]


def test_markup_characters_are_escaped():
    name = 'ООО "Рога & Копыта" <b>'
    body = orders_document([order(client={"id": "x&y", "name": name})], generated_at=WHEN)
    assert b"&amp; " in body and b"&lt;b&gt;" in body
    agent = etree.fromstring(body).find("Документ/Контрагенты/Контрагент")
    assert (agent.findtext("Ид"), agent.findtext("Наименование")) == ("x&y", name)


def test_characters_outside_windows_1251_become_references():
    body = orders_document([order(comment="Заказ №5 😀", status="bell\x07")], generated_at=WHEN)
    assert b"&#128512;" in body and "№5".encode("cp1251") in body
    doc = etree.fromstring(body).find("Документ")
    assert doc.findtext("Комментарий") == "Заказ №5 😀"
    assert requisite(doc, "Статус заказа") == "bell"  # a control character XML cannot carry is dropped


def test_no_orders_gives_a_bare_root():
    body = orders_document([], generated_at=WHEN)
    root = etree.fromstring(body)
    empty = etree.parse(str(SAMPLES / "bitrix-query-response-empty.xml")).getroot()
    assert len(root) == 0 and list(root.attrib) == list(empty.attrib)
    assert read_order_changes(body) == []


# --- hostile or broken uploads ---------------------------------------------------------------

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<КоммерческаяИнформация><Документ><Ид>&lol3;</Ид></Документ></КоммерческаяИнформация>""".encode()


@pytest.mark.parametrize("data", [
    LAUGHS,
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x>&xxe;</x>',
    b"\xef\xbb\xbf" + LAUGHS,
    LAUGHS.decode().encode("utf-16"),  # what a scan for ASCII "<!DOCTYPE" alone would miss
], ids=["billion-laughs", "external-entity", "bom", "utf-16"])
def test_dtds_are_refused(data):
    with pytest.raises(BadOrdersFile, match="DOCTYPE"):
        read_order_changes(data)


@pytest.mark.parametrize("data, reason", [
    (b"", "malformed"),
    ("<КоммерческаяИнформация><Документ>".encode(), "malformed"),
    ("<КоммерческаяИнформация>Ы</КоммерческаяИнформация>".encode("cp1251"), "malformed"),  # undeclared 1251
    ("<Каталог/>".encode(), "root element"),
])
def test_broken_files_are_refused(data, reason):
    with pytest.raises(BadOrdersFile, match=reason) as caught:
        read_order_changes(data)
    assert isinstance(caught.value, ValueError) and caught.value.reason


def test_oversized_files_are_refused(tmp_path):
    with pytest.raises(BadOrdersFile, match="larger"):
        read_order_changes(b" " * (MAX_FILE_BYTES + 1))
    big = tmp_path / "orders.xml"
    with big.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: no 20 MB written to disk
    with pytest.raises(BadOrdersFile, match="larger"):
        read_order_changes(big)
