"""Writer of realistic CommerceML 2.10 exchange packages, shaped like 1C УТ 11 exports.

Used by tests and benchmarks: it streams pre-encoded byte templates (no DOM), so a million offers
take seconds and constant memory. Ids depend only on ``seed`` and the offer index, so a later change-only
package (``only_changes=True, start=K``) updates products written by an earlier full one.

    python -m crmhub.plugins.onec.generator DIR --offers N [--split] [--only-changes] [--start K]
"""
import argparse
import os
import sys
import time
from collections.abc import Callable
from xml.sax.saxutils import escape

NAMESPACE = "urn:1C.ru:commerceml_210"
_M64 = (1 << 64) - 1
_M48 = (1 << 48) - 1
_BATCH = 2000
_STAMP = "2024-03-01T12:00:00"

# Id spaces keep the guids of different entities apart.
_CATALOG, _GROUP, _PROPERTY, _VALUE, _PRODUCT, _PRICE_TYPE, _WAREHOUSE = range(7)

_KINDS = ["Коврик для дома", "Чайник электрический", "Кроссовки беговые", "Футболка хлопковая",
          "Кастрюля эмалированная", "Сковорода антипригарная", "Набор отвёрток", "Рюкзак городской",
          "Плед флисовый", "Лампа настольная", "Термос стальной", "Полотенце махровое",
          "Пылесос ручной", "Зонт складной", "Кружка керамическая", "Подушка ортопедическая"]
_BRANDS = ["Portable", "Домашний сад", "Чистая линия", "Prime Living", "Северный ветер",
           '"Рога & Копыта"', "Тульский мастер", "Уют", "Bubble", "Сибирь"]
_VARIANTS = ["140x200 см", "1,5 л", "р. 42", "синий", "24 см", "6 предм.", "серый меланж", "50x70 см",
             "красный", "0,5 л", "р. 38", "зелёный"]
_PREFIXES = ["PM", "KM", "ТД", "Б", "CB", "УТ"]
_TOP_GROUPS = ["Товары для дома", "Одежда и обувь", "Инструменты", "Бытовая техника"]
_SUB_GROUPS = ["Текстиль", "Посуда", "Освещение", "Хранение", "Мужская одежда", "Женская одежда", "Обувь",
               "Аксессуары", "Ручной инструмент", "Электроинструмент", "Крепёж", "Садовый инвентарь",
               "Мелкая кухонная техника", "Уборка", "Климат", "Уход за собой"]
_PROPERTIES = [("Производитель", ["Обувной комбинат", "ООО Рога и копыта", "Crazy Boom", "Тульский завод",
                                  "Северсталь-Быт"]),
               ("Цвет", ["Белый", "Чёрный", "Красный", "Синий", "Зелёный", "Серый", "Бежевый", "Коричневый"]),
               ("Страна производства", ["РОССИЯ", "КИТАЙ", "КОРЕЯ, РЕСПУБЛИКА", "БЕЛАРУСЬ"])]
_CITIES = ["Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Владивосток"]


def _mix(x: int) -> int:
    # splitmix64 finaliser: cheap, well spread, reproducible across Python versions (unlike hash()).
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _guid_tail(seed: int) -> bytes:
    # 1C ids are time-based uuids: version "11e7", clock sequence and node fixed per infobase.
    h = _mix(seed ^ 0xC1C1C1)
    return b"-11e7-%04x-%012x" % (0x8000 | (h >> 48) & 0x3FFF, h & _M48)


def _guid(tail: bytes, space: int, index: int) -> bytes:
    # Xor, odd multiplies and xorshifts are invertible mod 2**48: distinct (space, index) never collide.
    x = ((space << 40 | index) ^ 0x5851F42D4C95) * 0x9E3779B97F4B & _M48
    x ^= x >> 24
    x = x * 0xBF58476D1CE5 & _M48
    x ^= x >> 23
    return b"%08x-%04x" % (x >> 16, x & 0xFFFF) + tail


def guid(seed: int, space: int, index: int) -> str:
    """The deterministic 1C-style Ид of entity ``index`` (< 2**40) in id space ``space``."""
    return _guid(_guid_tail(seed), space, index).decode()


def product_id(index: int, seed: int = 0) -> str:
    return guid(seed, _PRODUCT, index)


def _hash(index: int, seed: int) -> int:
    return _mix(seed << 40 ^ index)


def _price(h: int) -> str:
    rubles = 50 + (h >> 40) % 150_000
    return f"{rubles}.{(h >> 8) % 100:02d}" if (h >> 36) & 3 == 0 else str(rubles)


def _quantities(h: int, warehouses: int) -> list[int]:
    out = []
    for w in range(warehouses):
        if w % 5 == 0:
            h = _mix(h ^ w)
        part = h >> (12 * (w % 5)) & 0xFFF
        out.append(0 if part % 5 == 0 else 1 + (part >> 3) % 250)   # ~20% out of stock
    return out


def default_price(index: int, seed: int = 0) -> str:
    """The ЦенаЗаЕдиницу written for offer ``index`` when no ``price_fn`` is given."""
    return _price(_hash(index, seed))


def default_quantities(index: int, warehouses: int = 2, seed: int = 0) -> list[int]:
    """The per-warehouse stock written for offer ``index`` when no ``quantity_fn`` is given."""
    return _quantities(_hash(index, seed), warehouses)


def _presentation(price: str) -> bytes:
    rubles, _, kopecks = price.partition(".")
    grouped = f"{int(rubles):,}".replace(",", "\xa0")    # 1C groups digits with no-break spaces
    return f"{grouped},{kopecks} руб. за шт".encode() if kopecks else f"{grouped} руб. за шт".encode()


def _ean13(index: int) -> bytes:
    digits = b"2%011d" % (index % 10**11)    # 2xxxxxxxxxxxx: in-store numbering, as 1C assigns it
    total = sum(digits[0::2]) + 3 * sum(digits[1::2]) - 48 * 24   # bytes iterate as ASCII codes
    return digits + b"%d" % ((10 - total % 10) % 10)


class _Ids:
    def __init__(self, seed: int, warehouses: int):
        tail = self.tail = _guid_tail(seed)
        self.catalog = _guid(tail, _CATALOG, 0).decode()
        self.top_groups = [_guid(tail, _GROUP, i).decode() for i in range(len(_TOP_GROUPS))]
        self.sub_groups = [_guid(tail, _GROUP, 100 + i).decode() for i in range(len(_SUB_GROUPS))]
        self.properties = [_guid(tail, _PROPERTY, i).decode() for i in range(len(_PROPERTIES))]
        self.values = [[_guid(tail, _VALUE, p * 100 + v).decode() for v in range(len(values))]
                       for p, (_, values) in enumerate(_PROPERTIES)]
        self.price_type = _guid(tail, _PRICE_TYPE, 0).decode()
        self.warehouses = [_guid(tail, _WAREHOUSE, w).decode() for w in range(warehouses)]


def _head() -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация xmlns="{NAMESPACE}" '
            'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'ВерсияСхемы="2.10" ДатаФормирования="{_STAMP}">\n')


_OWNER = ("\t\t<Владелец>\n\t\t\t<Ид>e23f663b-18fc-11e7-80c2-0cc47ab29cd1</Ид>\n"
          "\t\t\t<Наименование>Торговый дом ООО</Наименование>\n"
          "\t\t\t<ОфициальноеНаименование>ООО &quot;Торговый дом&quot;</ОфициальноеНаименование>\n"
          "\t\t\t<ИНН>7700000000</ИНН>\n\t\t\t<КПП>770001001</КПП>\n\t\t</Владелец>\n")


def _classifier(ids: _Ids) -> str:
    out = [f"\t<Классификатор>\n\t\t<Ид>{ids.catalog}</Ид>\n"
           "\t\t<Наименование>Классификатор (Основной каталог товаров)</Наименование>\n",
           _OWNER, "\t\t<Группы>\n"]
    per_top = len(_SUB_GROUPS) // len(_TOP_GROUPS)
    for t, top in enumerate(_TOP_GROUPS):
        out.append(f"\t\t\t<Группа>\n\t\t\t\t<Ид>{ids.top_groups[t]}</Ид>\n"
                   f"\t\t\t\t<Наименование>{escape(top)}</Наименование>\n\t\t\t\t<Группы>\n")
        for s in range(t * per_top, (t + 1) * per_top):
            out.append(f"\t\t\t\t\t<Группа>\n\t\t\t\t\t\t<Ид>{ids.sub_groups[s]}</Ид>\n"
                       f"\t\t\t\t\t\t<Наименование>{escape(_SUB_GROUPS[s])}</Наименование>\n\t\t\t\t\t</Группа>\n")
        out.append("\t\t\t\t</Группы>\n\t\t\t</Группа>\n")
    out.append("\t\t</Группы>\n\t\t<Свойства>\n")
    for p, (name, values) in enumerate(_PROPERTIES):
        out.append(f"\t\t\t<Свойство>\n\t\t\t\t<Ид>{ids.properties[p]}</Ид>\n"
                   f"\t\t\t\t<Наименование>{escape(name)}</Наименование>\n"
                   "\t\t\t\t<ТипЗначений>Справочник</ТипЗначений>\n\t\t\t\t<ВариантыЗначений>\n")
        for v, value in enumerate(values):
            out.append(f"\t\t\t\t\t<Справочник>\n\t\t\t\t\t\t<ИдЗначения>{ids.values[p][v]}</ИдЗначения>\n"
                       f"\t\t\t\t\t\t<Значение>{escape(value)}</Значение>\n\t\t\t\t\t</Справочник>\n")
        out.append("\t\t\t\t</ВариантыЗначений>\n\t\t\t</Свойство>\n")
    out.append("\t\t</Свойства>\n\t</Классификатор>\n")
    return "".join(out)


def _flag(only_changes: bool) -> str:
    return "true" if only_changes else "false"


_UNIT = ('<БазоваяЕдиница Код="796 " НаименованиеПолное="Штука" '
         'МеждународноеСокращение="PCE">шт</БазоваяЕдиница>')
_E_KINDS = [escape(k).encode() for k in _KINDS]
_E_NAMES = [[[b"%s %s %s" % (kind, escape(brand, {'"': "&quot;"}).encode(), escape(variant).encode())
              for variant in _VARIANTS] for brand in _BRANDS] for kind in _E_KINDS]
_E_PREFIXES = [p.encode() for p in _PREFIXES]


def _look(h: int, index: int) -> tuple[int, bytes, bytes]:
    """Kind, escaped name and article of an offer, all derived from its hash."""
    kind = h % len(_KINDS)
    name = _E_NAMES[kind][(h >> 8) % len(_BRANDS)][(h >> 16) % len(_VARIANTS)]
    return kind, name, b"%s-%d" % (_E_PREFIXES[(h >> 24) % len(_PREFIXES)], 100000 + index)


# Record templates are bytes: formatting bytes skips re-encoding gigabytes of Cyrillic markup.
_PRODUCT_T = ("\t\t\t<Товар>\n\t\t\t\t<Ид>%s</Ид>\n\t\t\t\t<Штрихкод>%s</Штрихкод>\n"
              "\t\t\t\t<Артикул>%s</Артикул>\n\t\t\t\t<Наименование>%s</Наименование>\n"
              f"\t\t\t\t{_UNIT}\n\t\t\t\t<Группы>\n\t\t\t\t\t<Ид>%s</Ид>\n\t\t\t\t</Группы>\n"
              "\t\t\t\t<Описание/>\n\t\t\t\t<ЗначенияСвойств>\n%s\t\t\t\t</ЗначенияСвойств>\n"
              "\t\t\t\t<СтавкиНалогов>\n\t\t\t\t\t<СтавкаНалога>\n\t\t\t\t\t\t<Наименование>НДС</Наименование>\n"
              "\t\t\t\t\t\t<Ставка>20</Ставка>\n\t\t\t\t\t</СтавкаНалога>\n\t\t\t\t</СтавкиНалогов>\n"
              "\t\t\t\t<ЗначенияРеквизитов>\n"
              "\t\t\t\t\t<ЗначениеРеквизита>\n\t\t\t\t\t\t<Наименование>ВидНоменклатуры</Наименование>\n"
              "\t\t\t\t\t\t<Значение>%s</Значение>\n\t\t\t\t\t</ЗначениеРеквизита>\n"
              "\t\t\t\t\t<ЗначениеРеквизита>\n\t\t\t\t\t\t<Наименование>ТипНоменклатуры</Наименование>\n"
              "\t\t\t\t\t\t<Значение>Товар</Значение>\n\t\t\t\t\t</ЗначениеРеквизита>\n"
              "\t\t\t\t\t<ЗначениеРеквизита>\n\t\t\t\t\t\t<Наименование>Полное наименование</Наименование>\n"
              "\t\t\t\t\t\t<Значение>%s</Значение>\n\t\t\t\t\t</ЗначениеРеквизита>\n"
              "\t\t\t\t</ЗначенияРеквизитов>\n\t\t\t</Товар>\n").encode()
_PROPERTY_VALUE_T = ("\t\t\t\t\t<ЗначенияСвойства>\n\t\t\t\t\t\t<Ид>%s</Ид>\n"
                     "\t\t\t\t\t\t<Значение>%s</Значение>\n\t\t\t\t\t</ЗначенияСвойства>\n").encode()
_OFFER_T = ("\t\t\t<Предложение>\n\t\t\t\t<Ид>%s</Ид>\n\t\t\t\t<Артикул>%s</Артикул>\n"
            f"\t\t\t\t<Наименование>%s</Наименование>\n\t\t\t\t{_UNIT}\n%s\t\t\t</Предложение>\n").encode()
_PRICES_T = ("\t\t\t\t<Цены>\n\t\t\t\t\t<Цена>\n\t\t\t\t\t\t<Представление>%s</Представление>\n"
             "\t\t\t\t\t\t<ИдТипаЦены>%s</ИдТипаЦены>\n\t\t\t\t\t\t<ЦенаЗаЕдиницу>%s</ЦенаЗаЕдиницу>\n"
             "\t\t\t\t\t\t<Валюта>RUB</Валюта>\n\t\t\t\t\t\t<Единица>шт</Единица>\n"
             "\t\t\t\t\t\t<Коэффициент>1</Коэффициент>\n\t\t\t\t\t</Цена>\n\t\t\t\t</Цены>\n").encode()
_QUANTITY_T = "\t\t\t\t<Количество>%s</Количество>\n".encode()
_STOCK_T = '\t\t\t\t<Склад ИдСклада="%s" КоличествоНаСкладе="%s"/>\n'.encode()
_PRICE_ONLY_T = "\t\t\t<Предложение>\n\t\t\t\t<Ид>%s</Ид>\n%s\t\t\t</Предложение>\n".encode()
_RESTS_T = ("\t\t\t<Предложение>\n\t\t\t\t<Ид>%s</Ид>\n\t\t\t\t<Остатки>\n%s"
            "\t\t\t\t</Остатки>\n\t\t\t</Предложение>\n").encode()
_REST_T = ("\t\t\t\t\t<Остаток>\n\t\t\t\t\t\t<Склад>\n\t\t\t\t\t\t\t<Ид>%s</Ид>\n"
           "\t\t\t\t\t\t\t<Количество>%s</Количество>\n\t\t\t\t\t\t</Склад>\n\t\t\t\t\t</Остаток>\n").encode()
_TAIL = "\t\t</Предложения>\n\t</ПакетПредложений>\n</КоммерческаяИнформация>\n"


class _Writer:
    """Writes one exchange file in batches, UTF-8 with a BOM like every sampled 1C export."""

    def __init__(self, path: str):
        self.path = path
        self.file = open(path, "wb")
        self.buffer: list[bytes] = [b"\xef\xbb\xbf"]

    def add(self, chunk: bytes | str) -> None:
        self.buffer.append(chunk.encode() if isinstance(chunk, str) else chunk)
        if len(self.buffer) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        self.file.write(b"".join(self.buffer))
        self.buffer.clear()

    def close(self) -> None:
        self.flush()
        self.file.close()


def _package_head(ids: _Ids, only_changes: bool) -> str:
    return (f'\t<ПакетПредложений СодержитТолькоИзменения="{_flag(only_changes)}">\n'
            f"\t\t<Ид>{ids.catalog}#</Ид>\n"
            "\t\t<Наименование>Пакет предложений (Основной каталог товаров)</Наименование>\n"
            f"\t\t<ИдКаталога>{ids.catalog}</ИдКаталога>\n\t\t<ИдКлассификатора>{ids.catalog}</ИдКлассификатора>\n"
            + _OWNER)


def _price_types(ids: _Ids) -> str:
    return (f"\t\t<ТипыЦен>\n\t\t\t<ТипЦены>\n\t\t\t\t<Ид>{ids.price_type}</Ид>\n"
            "\t\t\t\t<Наименование>Розничная</Наименование>\n\t\t\t\t<Валюта>RUB</Валюта>\n"
            "\t\t\t\t<Налог>\n\t\t\t\t\t<Наименование>НДС</Наименование>\n"
            "\t\t\t\t\t<УчтеноВСумме>true</УчтеноВСумме>\n\t\t\t\t\t<Акциз>false</Акциз>\n\t\t\t\t</Налог>\n"
            "\t\t\t</ТипЦены>\n\t\t</ТипыЦен>\n")


def _warehouses(ids: _Ids) -> str:
    return ("\t\t<Склады>\n" + "".join(
        f"\t\t\t<Склад>\n\t\t\t\t<Ид>{wid}</Ид>\n"
        f"\t\t\t\t<Наименование>Склад {_CITIES[w % len(_CITIES)]} {w + 1}</Наименование>\n\t\t\t</Склад>\n"
        for w, wid in enumerate(ids.warehouses)) + "\t\t</Склады>\n")


def _ascii(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def write_exchange(dest_dir, offers: int, *, warehouses: int = 2, split: bool = False,
                   only_changes: bool = False, start: int = 0, seed: int = 0,
                   quantity_fn: Callable[[int, int], object] | None = None,
                   price_fn: Callable[[int], object] | None = None) -> list[str]:
    """Write import.xml + offers.xml (``split``: + prices.xml + rests.xml) for offers
    ``start .. start+offers-1`` into ``dest_dir``; returns the paths in 1C's upload order.

    ``price_fn(i)`` and ``quantity_fn(i, w)`` return numbers or decimal strings; the defaults are
    :func:`default_price` and :func:`default_quantities`.
    """
    os.makedirs(dest_dir, exist_ok=True)
    ids = _Ids(seed, warehouses)
    tail = ids.tail
    warehouse_ids = [w.encode() for w in ids.warehouses]
    price_type = ids.price_type.encode()
    indexes = range(start, start + offers)
    paths = []

    def price_of(i: int, h: int) -> str:
        return str(price_fn(i)) if price_fn else _price(h)

    def quantities_of(i: int, h: int) -> list:
        return [quantity_fn(i, w) for w in range(warehouses)] if quantity_fn else _quantities(h, warehouses)

    def open_file(name: str, head: str) -> _Writer:
        writer = _Writer(os.path.join(dest_dir, name))
        paths.append(writer.path)
        writer.add(_head() + head)
        return writer

    out = open_file("import.xml", _classifier(ids) +
                    f'\t<Каталог СодержитТолькоИзменения="{_flag(only_changes)}">\n'
                    f"\t\t<Ид>{ids.catalog}</Ид>\n"
                    f"\t\t<ИдКлассификатора>{ids.catalog}</ИдКлассификатора>\n"
                    "\t\t<Наименование>Основной каталог товаров</Наименование>\n" + _OWNER + "\t\t<Товары>\n")
    # The property Ид are fixed per seed, so they go into the template; only value Ид vary.
    props_template = b"".join(_PROPERTY_VALUE_T % (prop.encode(), b"%s") for prop in ids.properties)
    property_values = [[v.encode() for v in vs] for vs in ids.values]
    sub_groups = [g.encode() for g in ids.sub_groups]
    for i in indexes:
        h = _hash(i, seed)
        kind, name, article = _look(h, i)
        props = props_template % tuple(vals[(h >> (32 + 4 * p)) % len(vals)]
                                       for p, vals in enumerate(property_values))
        out.add(_PRODUCT_T % (_guid(tail, _PRODUCT, i), _ean13(i), article, name,
                              sub_groups[(h >> 48) % len(sub_groups)], props, _E_KINDS[kind], name))
    out.add("\t\t</Товары>\n\t</Каталог>\n</КоммерческаяИнформация>\n")
    out.close()

    head = _package_head(ids, only_changes)
    out = open_file("offers.xml", head + ("" if split else _price_types(ids) + _warehouses(ids))
                    + "\t\t<Предложения>\n")
    for i in indexes:
        h = _hash(i, seed)
        _, name, article = _look(h, i)
        body = b""
        if not split:
            price, quantities = price_of(i, h), quantities_of(i, h)
            body = (_PRICES_T % (_presentation(price), price_type, price.encode())
                    + _QUANTITY_T % _ascii(sum(quantities))
                    + b"".join(_STOCK_T % (wid, _ascii(q)) for wid, q in zip(warehouse_ids, quantities)))
        out.add(_OFFER_T % (_guid(tail, _PRODUCT, i), article, name, body))
    out.add(_TAIL)
    out.close()
    if not split:
        return paths

    out = open_file("prices.xml", head + _price_types(ids) + "\t\t<Предложения>\n")
    for i in indexes:
        price = price_of(i, _hash(i, seed))
        out.add(_PRICE_ONLY_T % (_guid(tail, _PRODUCT, i),
                                 _PRICES_T % (_presentation(price), price_type, price.encode())))
    out.add(_TAIL)
    out.close()

    out = open_file("rests.xml", head + _warehouses(ids) + "\t\t<Предложения>\n")
    for i in indexes:
        quantities = quantities_of(i, _hash(i, seed))
        rests = b"".join(_REST_T % (wid, _ascii(q)) for wid, q in zip(warehouse_ids, quantities))
        out.add(_RESTS_T % (_guid(tail, _PRODUCT, i), rests))
    out.add(_TAIL)
    out.close()
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crmhub.plugins.onec.generator",
                                     description="Write a realistic 1C CommerceML 2.10 exchange package.")
    parser.add_argument("dir")
    parser.add_argument("--offers", type=int, required=True)
    parser.add_argument("--warehouses", type=int, default=2)
    parser.add_argument("--split", action="store_true", help="2.10 split: separate prices.xml and rests.xml")
    parser.add_argument("--only-changes", action="store_true", help='СодержитТолькоИзменения="true"')
    parser.add_argument("--start", type=int, default=0, help="index of the first offer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    paths = write_exchange(args.dir, args.offers, warehouses=args.warehouses, split=args.split,
                           only_changes=args.only_changes, start=args.start, seed=args.seed)
    elapsed = time.perf_counter() - began
    for path in paths:
        print(f"{path}\t{os.path.getsize(path)} bytes")
    print(f"{args.offers} offers in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
