"""Orders over CommerceML 2 (1C ↔ site, ``type=sale``): our answer to ``mode=query`` and the order
changes 1C uploads with ``mode=file``.

The shapes follow real exchanges (copies in tests/unit/plugins/onec/samples): a 1C-Bitrix answer to
``mode=query`` (ВерсияСхемы 2.05, windows-1251, no namespace) and an older 2.03 one. 1C sends the
same ``Документ`` back with the order's state in ``ЗначенияРеквизитов``; requisite names differ
between 1C configurations and site modules, hence the aliases in :func:`_change`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from lxml import etree

SCHEMA_VERSION = "2.05"
MAX_FILE_BYTES = 20 * 1024 * 1024  # an order upload is kilobytes; anything near this is not one
ROOT = "КоммерческаяИнформация"

# lxml writes its own declaration with single quotes; sites send this exact line.
_DECLARATION = b'<?xml version="1.0" encoding="windows-1251"?>\n'
# Declared as 1C-Bitrix does: 1C reads dates, sums and quantities of the file by these formats.
_ROOT_FORMATS = {
    "ФорматДаты": "ДФ=yyyy-MM-dd; ДЛФ=DT",
    "ФорматВремени": "ДФ=ЧЧ:мм:сс; ДЛФ=T",
    "РазделительДатаВремя": "T",
    "ФорматСуммы": "ЧЦ=18; ЧДЦ=2; ЧРД=.",
    "ФорматКоличества": "ЧЦ=18; ЧДЦ=2; ЧРД=.",
}
# Code points XML 1.0 forbids even as character references: dropped so one bad byte in a CRM
# field cannot break the whole answer.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNIT = {"Код": "796", "НаименованиеПолное": "Штука", "МеждународноеСокращение": "PCE"}
# A DTD is the only way to declare entities; none is legitimate in an order file. The UTF-16 forms
# keep the byte scan honest for files lxml would decode from UTF-16.
_FORBIDDEN = tuple(
    marker.encode(codec)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for codec in ("ascii", "utf-16-le", "utf-16-be")
)
# How 1C writes an empty date into a string requisite ("T" = empty date and time joined by "T").
_EMPTY_DATES = {"T", "0001-01-01", "0001-01-01T00:00:00", "01.01.0001", "01.01.0001 0:00:00"}
_TRUE = {"true", "да", "1", "yes"}
_FALSE = {"false", "нет", "0", "no"}


class BadOrdersFile(ValueError):
    """An order file from 1C we refuse to read; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OrderChange:
    """The state of one order as 1C reports it (one ``Документ``).

    Flags are None when the file does not say; ``requisites`` holds every document-level
    ``ЗначениеРеквизита`` as sent (name → stripped value).
    """

    order_id: str | None  # Документ/Ид: our deal id for orders we sent, a 1C GUID for 1C's own
    number: str | None  # Документ/Номер
    erp_number: str | None  # 1C's own document number ("Номер по 1С" / Номер1С)
    operation: str | None  # ХозОперация: "Заказ товара"; payments and shipments ride along in 2.08+
    status: str | None
    status_id: str | None
    paid: bool | None
    shipped: bool | None
    cancelled: bool | None
    posted: bool | None  # "Проведен": the 1C document is posted, which is not "shipped"
    deleted: bool
    amount: str | None  # Сумма as a plain decimal string, e.g. "231.7400"
    requisites: dict[str, str]


# ---------------------------------------------------------------------------------------------
# mode=query: our orders for 1C


def orders_document(orders: list[dict], *, generated_at: datetime) -> bytes:
    """The answer to ``type=sale&mode=query``: CommerceML 2.05 in windows-1251, a ``Документ`` per
    order (none for an empty list). Characters windows-1251 lacks become character references.

    Each order::

        {"id": str, "number": str, "created_at": datetime, "currency": "RUB",
         "amount": Decimal | str | None,      # None: the sum of the lines
         "comment": str | None, "status": str | None, "manager": str | None,
         "status_changed_at": datetime | None, "paid": bool | None, "cancelled": bool | None,
         "client": {"id": str, "name": str, "phones": [str], "emails": [str]},
         "lines": [{"product_id": str | None,  # catalog Ид, may be "guid#characteristic"
                    "sku": str, "name": str | None,
                    "quantity": Decimal | str, "price": Decimal | str}]}

    Keys after ``currency`` are optional. Datetimes are written as their wall-clock time (CommerceML
    has no time zone), so pass them in the shop's zone.
    """
    root = etree.Element(ROOT, {"ВерсияСхемы": SCHEMA_VERSION, "ДатаФормирования": _datetime(generated_at),
                                **_ROOT_FORMATS})
    for order in orders:
        _document(root, order)
    return _DECLARATION + etree.tostring(root, encoding="windows-1251", xml_declaration=False,
                                         pretty_print=True)


def _document(root: etree._Element, order: dict) -> None:
    created: datetime = order["created_at"]
    lines = order.get("lines") or []
    amount = order.get("amount")
    total = _decimal(amount) if amount is not None else sum((_amounts(line)[2] for line in lines), Decimal(0))

    # Element order is the schema's (Время after Контрагенты), as 1C-Bitrix writes it.
    doc = _sub(root, "Документ")
    _sub(doc, "Ид", order["id"])
    _sub(doc, "Номер", order.get("number") or order["id"])
    _sub(doc, "Дата", created.strftime("%Y-%m-%d"))
    _sub(doc, "ХозОперация", "Заказ товара")
    _sub(doc, "Роль", "Продавец")
    _sub(doc, "Валюта", order.get("currency") or "RUB")
    _sub(doc, "Курс", "1")
    _sub(doc, "Сумма", _money(total))
    _client(doc, order.get("client") or {})
    _sub(doc, "Время", created.strftime("%H:%M:%S"))
    _sub(doc, "Комментарий", order.get("comment") or "")
    goods = _sub(doc, "Товары")
    for line in lines:
        _line(goods, line)

    requisites = []
    if order.get("status"):
        requisites.append(("Статус заказа", order["status"]))
        if order.get("status_changed_at"):
            requisites.append(("Дата изменения статуса", _datetime(order["status_changed_at"])))
    requisites += [("Заказ оплачен", _bool(order.get("paid"))), ("Отменен", _bool(order.get("cancelled")))]
    if order.get("manager"):
        requisites.append(("Менеджер", order["manager"]))
    _requisites(doc, requisites)


def _client(doc: etree._Element, client: dict) -> None:
    phones = [p for p in client.get("phones") or () if p]
    emails = [e for e in client.get("emails") or () if e]
    # 1C creates the counterparty by this name; a card known only by its phone still needs one.
    name = client.get("name") or next(iter(phones + emails), "")
    agent = _sub(_sub(doc, "Контрагенты"), "Контрагент")
    _sub(agent, "Ид", client.get("id") or "")
    _sub(agent, "Наименование", name)
    _sub(agent, "Роль", "Покупатель")
    _sub(agent, "ПолноеНаименование", name)
    if phones or emails:
        contacts = _sub(agent, "Контакты")
        # The 2.05 spellings (1C-Bitrix switches to "Телефон рабочий" only for newer schema versions).
        for kind, value in [("ТелефонРабочий", p) for p in phones] + [("Почта", e) for e in emails]:
            contact = _sub(contacts, "Контакт")
            _sub(contact, "Тип", kind)
            _sub(contact, "Значение", value)


def _line(goods: etree._Element, line: dict) -> None:
    sku = str(line.get("sku") or "")
    price, quantity, amount = _amounts(line)
    item = _sub(goods, "Товар")
    _sub(item, "Ид", line.get("product_id") or sku)
    if sku:
        _sub(item, "Артикул", sku)
    _sub(item, "Наименование", line.get("name") or sku)
    _sub(item, "БазоваяЕдиница", "шт", _UNIT)
    _sub(item, "ЦенаЗаЕдиницу", _money(price))
    _sub(item, "Количество", _quantity(quantity))
    _sub(item, "Сумма", _money(amount))
    _requisites(item, [("ВидНоменклатуры", "Товар"), ("ТипНоменклатуры", "Товар")])


def _amounts(line: dict) -> tuple[Decimal, Decimal, Decimal]:
    # The line sum is taken from the price as written, so 1C's own price × quantity agrees with it.
    price = _round(_decimal(line["price"]))
    quantity = _decimal(line["quantity"])
    return price, quantity, _round(price * quantity)


def _requisites(parent: etree._Element, pairs: list[tuple[str, str]]) -> None:
    box = _sub(parent, "ЗначенияРеквизитов")
    for name, value in pairs:
        item = _sub(box, "ЗначениеРеквизита")
        _sub(item, "Наименование", name)
        _sub(item, "Значение", value)


def _sub(parent: etree._Element, tag: str, text: object = None, attrib: dict | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag, attrib or {})
    if text is not None:
        element.text = _NOT_XML.sub("", str(text))
    return element


def _decimal(value: object) -> Decimal:
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return number


def _round(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _money(value: Decimal) -> str:
    return format(_round(value), "f")


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")  # "f" keeps normalize() from turning 100 into 1E+2


def _datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _bool(value: object) -> str:
    return "true" if value else "false"


# ---------------------------------------------------------------------------------------------
# mode=file: what 1C says about the orders


def read_order_changes(source: bytes | str | os.PathLike) -> list[OrderChange]:
    """One :class:`OrderChange` per ``Документ`` of a file 1C uploaded with ``type=sale&mode=file``.

    ``source`` is the file's bytes or its path. Any encoding lxml recognises from the declaration
    or a BOM, with or without a namespace. Raises :class:`BadOrdersFile` for a DTD, malformed XML,
    a foreign root or more than ``MAX_FILE_BYTES``.
    """
    root = _parse(_load(source))
    documents = []
    for child in root:
        if _name(child) == "Документ":
            documents.append(child)
        elif _name(child) == "Контейнер":  # 2.08+ wraps an order and its payments/shipments
            documents += _children(child, "Документ")
    return [_change(doc) for doc in documents]


def _load(source: bytes | str | os.PathLike) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        with open(source, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise BadOrdersFile(f"file larger than {MAX_FILE_BYTES} bytes")
    return data


def _parse(data: bytes) -> etree._Element:
    if any(marker in data for marker in _FORBIDDEN):
        raise BadOrdersFile("DOCTYPE/ENTITY declarations are not allowed")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise BadOrdersFile(f"malformed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:  # a DTD in an encoding the byte scan cannot see
        raise BadOrdersFile("DOCTYPE/ENTITY declarations are not allowed")
    if _name(root) != ROOT:
        raise BadOrdersFile(f"root element is {_name(root)!r}, not {ROOT}")
    return root


def _change(doc: etree._Element) -> OrderChange:
    requisites: dict[str, str] = {}
    box = _first(doc, "ЗначенияРеквизитов")
    # Some site modules met requisites written straight under Документ; read both placements.
    for item in (_children(box, "ЗначениеРеквизита") if box is not None else []) + _children(
        doc, "ЗначениеРеквизита"
    ):
        name = _text(item, "Наименование")
        if name:
            requisites[name] = _text(item, "Значение") or ""
    by_key = {_key(name): value for name, value in requisites.items()}

    def pick(*names: str) -> str | None:
        return next((by_key[_key(n)] for n in names if by_key.get(_key(n))), None)

    def dated(*names: str) -> bool | None:
        # 1C fills the payment/shipment date (or number) once that document exists.
        value = pick(*names)
        return True if value and value not in _EMPTY_DATES else None

    status_id = pick("Статуса заказа ИД", "Статус заказа ИД")  # "Статуса" is 1C-Bitrix's spelling
    paid = _flag(pick("Заказ оплачен", "Оплачен"))
    shipped = _flag(pick("Отгружен", "Отгружено"))
    return OrderChange(
        order_id=_text(doc, "Ид"),
        number=_text(doc, "Номер"),
        erp_number=pick("Номер по 1С") or _text(doc, "Номер1С"),
        operation=_text(doc, "ХозОперация"),
        status=pick("Статус заказа") or status_id,
        status_id=status_id,
        paid=paid if paid is not None else dated("Дата оплаты по 1С", "Номер оплаты по 1С", "Дата оплаты"),
        shipped=shipped if shipped is not None else dated("Дата отгрузки по 1С", "Номер отгрузки по 1С",
                                                          "Дата отгрузки"),
        cancelled=_flag(pick("Отменен")),
        posted=_flag(pick("Проведен")),
        deleted=bool(_flag(_text(doc, "ПометкаУдаления") or pick("ПометкаУдаления"))),
        amount=_amount(_text(doc, "Сумма")),
        requisites=requisites,
    )


def _name(element: etree._Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in element if _name(child) == name]


def _first(element: etree._Element, name: str) -> etree._Element | None:
    return next(iter(_children(element, name)), None)


def _text(element: etree._Element, name: str) -> str | None:
    child = _first(element, name)
    if child is None:
        return None
    return "".join(child.itertext()).strip() or None


def _key(name: str) -> str:
    # Hand-typed names in 1C drift: case, doubled spaces, "ё", a Latin "C" in "1С".
    return " ".join(name.split()).casefold().replace("ё", "е").replace("c", "с")


def _flag(value: str | None) -> bool | None:
    value = (value or "").strip().casefold()
    return True if value in _TRUE else False if value in _FALSE else None


def _amount(value: str | None) -> str | None:
    if not value:
        return None
    try:
        number = Decimal(re.sub(r"\s", "", value).replace(",", "."))
    except InvalidOperation:
        return None
    return format(number, "f") if number.is_finite() else None
