"""The docs keep up with the code (datasette's test_plugin_hooks_are_documented): every hook is
documented in its docstring and in docs/connectors.md, every event and RPC method in
docs/events.md."""
import inspect
import re
from pathlib import Path

import pytest

from crmhub.contracts import events, rpc
from crmhub.contracts.base import EventSchema, instance
from crmhub.plugins import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec"))


def doc(name: str) -> str:
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing"
    return path.read_text(encoding="utf-8")


def signature(hook: str) -> str:
    return f"{hook}({', '.join(inspect.signature(getattr(hookspecs, hook)).parameters)})"


def test_there_are_hooks():
    assert "crmhub_register_connectors" in HOOKS


# -- hooks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_describes_every_argument_and_the_result(hook):
    docstring = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert docstring.strip(), f"{hook} has no docstring"
    for arg in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert re.search(rf"^:param {arg}:", docstring, re.M), f"{hook}: no ':param {arg}:'"
    assert re.search(r"^:returns:", docstring, re.M), f"{hook}: no ':returns:' line"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_heading_in_connectors_md(hook):
    headings = re.findall(r"^### (.+?)\s*$", doc("connectors.md"), re.M)
    assert signature(hook) in headings, (
        f"docs/connectors.md needs a heading '### {signature(hook)}'")


def test_connectors_md_documents_no_hook_that_does_not_exist():
    documented = re.findall(r"^### (crmhub_\w+)\(", doc("connectors.md"), re.M)
    assert sorted(set(documented)) == sorted(documented), "a hook is documented twice"
    assert set(documented) <= set(HOOKS), set(documented) - set(HOOKS)


# -- events ---------------------------------------------------------------------------------

def table_rows(text: str, first_header: str) -> dict[str, list[str]]:
    """Rows of the markdown table whose first header cell is ``first_header``, keyed by the
    first cell without backticks."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            inside = False
        elif cells[0] == first_header:
            inside = True
        elif inside and not set(cells[0]) <= {"-", ":"}:
            rows[cells[0].strip("`")] = cells
    return rows


def section(text: str, heading: str) -> str:
    match = re.search(rf"^### {re.escape(heading)}\s*$(.*?)(?=^#{{1,3}} |\Z)", text, re.M | re.S)
    assert match, f"docs/events.md has no '### {heading}' section"
    return match.group(1)


@pytest.mark.parametrize("name", sorted(events.CATALOG))
def test_event_is_in_the_catalog_table(name):
    spec = events.CATALOG[name]
    rows = table_rows(doc("events.md"), "Event")
    assert name in rows, f"docs/events.md: the event table has no row for `{name}`"
    row = rows[name]
    assert row[1:5] == [f"`{spec.owner}`", f"`{spec.owner}.events`", f"`{name}`",
                        str(spec.schema_version)], row
    assert row[5].strip("`").endswith(spec.schema.__name__)
    assert row[6], f"`{name}` has no description"


def test_event_table_lists_only_catalog_events():
    assert set(table_rows(doc("events.md"), "Event")) == set(events.CATALOG)


@pytest.mark.parametrize("name", sorted(events.CATALOG))
def test_event_fields_are_described(name):
    """Each event has a section naming every field its schema adds to the envelope."""
    text = section(doc("events.md"), name)
    envelope = set(instance(EventSchema).fields)
    for field_name, field in instance(events.CATALOG[name].schema).fields.items():
        if field_name not in envelope:
            wire = field.data_key or field_name
            assert f"`{wire}`" in text, f"docs/events.md, {name}: field `{wire}` undescribed"


def test_envelope_fields_are_described():
    text = doc("events.md")
    for name, field in instance(EventSchema).fields.items():
        assert f"| `{field.data_key or name}` |" in text


@pytest.mark.parametrize("key", sorted(rpc.CATALOG))
def test_rpc_method_is_in_the_rpc_table(key):
    spec = rpc.CATALOG[key]
    rows = table_rows(doc("events.md"), "Method")
    assert key in rows, f"docs/events.md: the RPC table has no row for `{key}`"
    argument, result = rows[key][1], rows[key][2]
    if spec.request is not None:
        assert spec.request.__name__ in argument
    assert spec.response.__name__ in result


def test_rpc_table_lists_only_catalog_methods():
    assert set(table_rows(doc("events.md"), "Method")) == set(rpc.CATALOG)


def test_versioning_is_explained():
    text = doc("events.md")
    assert "## Versioning" in text
    assert "schema_version" in section_text(text, "## Versioning")


def section_text(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]
