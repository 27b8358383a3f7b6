"""Streaming reader of CommerceML 2.x catalog files (import / offers / prices / rests).

Real shops send files of hundreds of MB, so the document is never held in memory: iterparse
reports only the few record elements we care about, each is turned into a tuple and then freed
together with its already-processed siblings. Elements are matched on local names because 1C uses
``urn:1C.ru:commerceml_2``, ``urn:1C.ru:commerceml_210`` or no namespace at all.
"""
import re
from collections.abc import Iterator
from typing import NamedTuple

from crmhub.plugins.onec.xmlsafety import ExchangeFileError, safe_iterparse

ROOT = "КоммерческаяИнформация"


class BadRecord(ExchangeFileError):
    pass


# NamedTuples: the cheapest immutable record to build a million times per file.
class Package(NamedTuple):
    kind: str                    # import | offers | prices | rests
    only_changes: bool           # False = full snapshot: items absent from it may be deactivated
    catalog_id: str | None
    classifier_id: str | None
    schema_version: str | None


class Group(NamedTuple):
    id: str
    parent_id: str | None
    name: str | None


class Property(NamedTuple):
    id: str
    name: str | None
    values: dict[str, str]       # ИдЗначения -> Значение for reference-book properties


class PriceType(NamedTuple):
    id: str
    name: str | None
    currency: str | None


class Warehouse(NamedTuple):
    id: str
    name: str | None


class Product(NamedTuple):
    id: str
    article: str | None
    barcode: str | None
    name: str | None
    unit: str | None
    unit_code: str | None
    group_ids: tuple[str, ...]
    properties: dict[str, str]   # property Ид -> raw value (a value Ид for reference-book properties)
    requisites: dict[str, str]
    description: str | None
    deleted: bool
    images: tuple[str, ...] = ()  # Картинка paths, e.g. import_files/ab/<guid>.jpg


class Price(NamedTuple):
    price_type_id: str | None
    amount: str
    currency: str | None
    unit: str | None


class Offer(NamedTuple):
    id: str
    product_id: str
    characteristic_id: str | None
    article: str | None
    name: str | None
    characteristics: tuple[tuple[str, str], ...]
    prices: tuple[Price, ...]
    quantity: str | None
    stocks: tuple[tuple[str, str], ...]  # (warehouse Ид or "" for an unspecified warehouse, quantity)
    deleted: bool


_WATCHED = (ROOT, "Классификатор", "Каталог", "ПакетПредложений", "Группа", "Свойство",
            "СвойствоНоменклатуры", "ТипыЦен", "Склады", "Товар", "Предложение")
_TAGS = ["{*}" + name for name in _WATCHED]
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)
_SPACES = str.maketrans({" ": None, "\xa0": None, "\u202f": None, "\t": None, "\n": None, "\r": None,
                          ",": "."})


class _LocalNames(dict):
    """Full tag -> local name, computed once per distinct tag instead of once per element."""

    def __missing__(self, tag):
        local = self[tag] = tag.rpartition("}")[2]
        return local


def _num(text, record_id, what) -> str:
    if text is not None:
        if text.isdigit() and text.isascii():
            return text
        cleaned = text.translate(_SPACES)
        if _NUMBER.fullmatch(cleaned):
            return cleaned
    raise BadRecord(f"{what} {text!r} of {record_id} is not a number")


def _text(el) -> str | None:
    text = el.text
    return text.strip() if text else None


def _child_text(el, names, wanted) -> str | None:
    for child in el:
        if names[child.tag] == wanted:
            return _text(child)
    return None


def _is_true(text) -> bool:
    return (text or "").strip().lower() == "true"


def _free(el) -> None:
    el.clear()
    while el.getprevious() is not None:
        del el.getparent()[0]


def read_package(path, kind_hint: str | None = None) -> Iterator[tuple[str, object]]:
    """Yield ``(kind, record)`` pairs in document order, ``("package", Package)`` first.

    ``kind_hint`` (from the file name, see :func:`exchange_file_kind`) overrides the guess of the
    package kind. Malformed XML raises BrokenXml, bad values BadRecord.
    """
    names = _LocalNames()
    pending: list | None = []    # records met before the package header can be decided
    root = classifier_id = None
    offer_tag = read_offer = None
    done = 0
    for _, el in safe_iterparse(path, ("end",), _TAGS):
        tag = el.tag
        if tag == offer_tag and pending is None:   # the hot path: millions of these
            yield "offer", read_offer(el)
            done += 1
            if not done % _BATCH:   # free finished siblings in bulk: per-offer deletes cost proxies
                del el.getparent()[:-1]
            continue
        name = names[tag]
        if root is None:
            root = el.getroottree().getroot()
            if names[root.tag] != ROOT:
                raise BadRecord(f"the root element is {names[root.tag]!r}, not {ROOT}")
        records = ()
        if name == "Предложение" or name == "Товар":
            container = el.getparent().getparent()
            if name == "Товар" and (container is None or names[container.tag] != "Каталог"):
                continue    # order lines (Документ/Товары/Товар) are not catalog products
            if pending is not None:
                kind = kind_hint or ("import" if name == "Товар" else _guess_offers_kind(el, names))
                yield "package", _package(kind, container, names, root, classifier_id)
                yield from pending
                pending = None
            if name == "Товар":
                yield "product", _product(el, names)
            else:
                offer_tag, read_offer = tag, _offer_reader(tag[:len(tag) - len(name)])
                yield "offer", read_offer(el)
            _free(el)
            continue
        if name == "Группа":
            owner = el.getparent().getparent()
            if owner is not None and names[owner.tag] == "Группа":
                continue    # nested: emitted with its top-level ancestor, parents first
            records = list(_groups(el, None, names))
            _free(el)
        elif name == "Свойство" or name == "СвойствоНоменклатуры":
            records = [("property", _property(el, names))]
            _free(el)
        elif name == "ТипыЦен":
            records = [("price_type", PriceType(tid, _child_text(t, names, "Наименование"),
                                                _child_text(t, names, "Валюта")))
                       for t in el if (tid := _child_text(t, names, "Ид"))]
            el.clear()      # siblings may still be the package header (Ид, ИдКаталога)
        elif name == "Склады":
            records = [("warehouse", Warehouse(wid, _child_text(w, names, "Наименование")))
                       for w in el if (wid := _child_text(w, names, "Ид"))]
            el.clear()
        elif name == "Классификатор":
            classifier_id = _child_text(el, names, "Ид")
            el.clear()
        elif name in ("Каталог", "ПакетПредложений", ROOT) and pending is not None:
            kind = kind_hint or ("import" if name != "ПакетПредложений" else "offers")
            container = el if name != ROOT else None
            yield "package", _package(kind, container, names, root, classifier_id)
            yield from pending
            pending = None
        if pending is None:
            yield from records
        else:
            pending.extend(records)
    if root is None:
        raise BadRecord(f"the root element is not {ROOT}")


def _package(kind, container, names, root, classifier_id) -> Package:
    version = root.get("ВерсияСхемы")
    if container is None:   # a classifier-only import.xml: nothing may be deactivated by absence
        return Package(kind, True, None, classifier_id, version)
    fields = {names[child.tag]: _text(child) for child in container if names[child.tag] in _HEADER}
    if names[container.tag] == "Каталог":
        catalog_id = fields.get("Ид")
    else:   # ПакетПредложений/Ид is "<catalog Ид>#"
        catalog_id = fields.get("ИдКаталога") or (fields.get("Ид") or "").rstrip("#") or None
    return Package(kind, _is_true(container.get("СодержитТолькоИзменения")), catalog_id,
                   fields.get("ИдКлассификатора") or classifier_id, version)


_HEADER = {"Ид", "ИдКаталога", "ИдКлассификатора"}


def _guess_offers_kind(offer, names) -> str:
    # 2.09/2.10 split exchange: prices*.xml offers carry only Цены, rests*.xml only Остатки.
    present = {names[child.tag] for child in offer}
    if "Наименование" in present:
        return "offers"
    has_stock = bool(present & {"Остатки", "Склад", "Количество"})
    if "Цены" in present and not has_stock:
        return "prices"
    if has_stock and "Цены" not in present:
        return "rests"
    return "offers"


def _groups(el, parent_id, names):
    group_id = group_name = None
    children = ()
    for child in el:
        name = names[child.tag]
        if name == "Ид":
            group_id = _text(child)
        elif name == "Наименование":
            group_name = _text(child)
        elif name == "Группы":
            children = child
    if not group_id:
        raise BadRecord(f"a Группа under {parent_id or 'the classifier'} has no Ид")
    yield "group", Group(group_id, parent_id, group_name)
    for sub in children:
        yield from _groups(sub, group_id, names)


def _property(el, names) -> Property:
    prop_id = prop_name = None
    values = {}
    for child in el:
        name = names[child.tag]
        if name == "Ид":
            prop_id = _text(child)
        elif name == "Наименование":
            prop_name = _text(child)
        elif name == "ВариантыЗначений":
            for variant in child:
                value_id = _child_text(variant, names, "ИдЗначения")
                if value_id:
                    values[value_id] = _child_text(variant, names, "Значение") or ""
    if not prop_id:
        raise BadRecord(f"Свойство {prop_name!r} has no Ид")
    return Property(prop_id, prop_name, values)


def _product(el, names) -> Product:
    pid = article = barcode = name = unit = unit_code = description = None
    groups, images, properties, requisites = [], [], {}, {}
    deleted = el.get("Статус") == "Удален"
    for child in el:
        tag = names[child.tag]
        if tag == "Ид":
            pid = _text(child)
        elif tag == "Артикул":
            article = _text(child)
        elif tag == "Наименование":
            name = _text(child)
        elif tag == "Штрихкод":
            barcode = _text(child)
        elif tag == "БазоваяЕдиница":
            unit = (_text(child) or (child.get("НаименованиеКраткое") or child.get("НаименованиеПолное")
                                     or child.get("МеждународноеСокращение") or "").strip() or None)
            unit_code = (child.get("Код") or "").strip() or None   # real files send Код="796 "
        elif tag == "Группы":
            groups.extend(text for g in child if (text := _text(g)))
        elif tag == "Описание":
            description = _text(child)
        elif tag == "Картинка":
            if text := _text(child):
                images.append(text)
        elif tag == "ЗначенияСвойств":
            for value in child:
                prop_id = _child_text(value, names, "Ид")
                if prop_id:
                    properties[prop_id] = _child_text(value, names, "Значение") or ""
        elif tag == "ЗначенияРеквизитов":
            for value in child:
                key = _child_text(value, names, "Наименование")
                if key:
                    requisites[key] = _child_text(value, names, "Значение") or ""
        elif tag == "ПометкаУдаления":
            deleted = deleted or _is_true(child.text)
    if not pid:
        raise BadRecord(f"a Товар ({name!r}) has no Ид")
    return Product(pid, article, barcode, name, unit, unit_code, tuple(groups), properties, requisites,
                   description, deleted, tuple(images))


def _offer_reader(ns: str):
    """An offer reader specialised for one namespace: full tags are compared with constants, sparing
    the hot loop a local-name lookup per child element."""
    ID, ARTICLE, NAME, PRICES, QUANTITY, STORE, RESTS, FEATURES, MARK = (
        ns + name for name in ("Ид", "Артикул", "Наименование", "Цены", "Количество", "Склад", "Остатки",
                               "ХарактеристикиТовара", "ПометкаУдаления"))
    PRICE_TYPE, AMOUNT, CURRENCY, UNIT = (ns + name for name in (
        "ИдТипаЦены", "ЦенаЗаЕдиницу", "Валюта", "Единица"))
    names = _LocalNames()

    def read(el) -> Offer:
        oid = article = name = quantity = None
        characteristics = ()
        prices, stocks = [], []
        deleted = el.get("Статус") == "Удален"
        for child in el:
            tag = child.tag
            if tag == ID:
                oid = child.text
            elif tag == STORE:
                warehouse = child.get("ИдСклада")
                if warehouse is not None:
                    value = child.get("КоличествоНаСкладе")
                    if not (value and value.isdigit() and value.isascii()):
                        value = _num(value, oid, "КоличествоНаСкладе")
                    stocks.append((warehouse, value))
            elif tag == PRICES:
                for price in child:
                    type_id = amount = currency = unit = None
                    for field in price:
                        ftag = field.tag
                        if ftag == AMOUNT:
                            amount = field.text
                        elif ftag == PRICE_TYPE:
                            type_id = field.text
                        elif ftag == CURRENCY:
                            currency = field.text
                        elif ftag == UNIT:
                            unit = field.text
                    if not (amount and amount.isdigit() and amount.isascii()):
                        amount = _num(amount, oid, "ЦенаЗаЕдиницу")
                    prices.append(_new(Price, (type_id, amount, currency, unit)))
            elif tag == NAME:
                name = (child.text or "").strip() or None
            elif tag == ARTICLE:
                article = (child.text or "").strip() or None
            elif tag == QUANTITY:
                quantity = _num(child.text, oid, "Количество")
            elif tag == RESTS:
                stocks.extend(_rests(child, names, oid))
            elif tag == FEATURES:
                characteristics = tuple((_child_text(c, names, "Наименование") or "",
                                         _child_text(c, names, "Значение") or "") for c in child)
            elif tag == MARK:
                deleted = deleted or _is_true(child.text)
        if not oid:
            raise BadRecord(f"an offer ({name!r}) has no Ид")
        product_id, _, characteristic_id = oid.partition("#")
        return _new(Offer, (oid, product_id, characteristic_id or None, article, name, characteristics,
                            tuple(prices), quantity, tuple(stocks), deleted))

    return read


_new = tuple.__new__   # skips NamedTuple's Python-level __new__ in the hot path
_BATCH = 256


def _rests(rests, names, oid):
    # 2.09/2.10: Остатки/Остаток/Склад{Ид, Количество}, or Остаток/Количество for "all warehouses".
    for rest in rests:
        for part in rest:
            tag = names[part.tag]
            if tag == "Склад":
                warehouse = _child_text(part, names, "Ид") or ""
                yield warehouse, _num(_child_text(part, names, "Количество"), oid, "Количество")
            elif tag == "Количество":
                yield "", _num(part.text, oid, "Количество")
