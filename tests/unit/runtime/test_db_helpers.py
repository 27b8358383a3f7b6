"""The insert and update helpers on both database backends: what they report is what was
stored."""
import datetime as dt

import pytest
import sqlalchemy as sa

from crmhub.runtime.db import insert_ignoring_conflicts, make_engine
from crmhub.services.contacts.models import contact_emails, contacts


@pytest.fixture
def conn(database_config):
    """A transaction on the contacts tables, with cards c0 ... c249."""
    engine = make_engine(database_config, "contacts")
    now = dt.datetime.now(dt.timezone.utc)
    try:
        with engine.begin() as conn:
            conn.execute(contacts.insert(), [
                {"id": f"c{i}", "kind": "person", "tags": [], "custom_fields": {},
                 "search_text": "", "created_at": now, "updated_at": now} for i in range(250)])
            yield conn
    finally:
        engine.dispose()


def test_inserting_many_rows_reports_how_many_were_new(conn):
    rows = [{"email": f"{i}@example.com", "contact_id": f"c{i}", "position": 0} for i in range(3)]
    assert insert_ignoring_conflicts(conn, contact_emails, rows[:1], ["email"]) == 1
    assert insert_ignoring_conflicts(conn, contact_emails, rows, ["email"]) == 2
    assert insert_ignoring_conflicts(conn, contact_emails, rows, ["email"]) == 0
    stored = conn.execute(sa.select(contact_emails.c.email)).scalars().all()
    assert sorted(stored) == [r["email"] for r in rows]


def test_an_update_for_many_rows_changes_each_row(conn):
    """On PostgreSQL an executemany UPDATE goes in pages of statements: every row still
    gets its own values."""
    conn.execute(contacts.update().where(contacts.c.id == sa.bindparam("b_id"))
                 .values(name=sa.bindparam("b_name"), tags=sa.bindparam("b_tags")),
                 [{"b_id": f"c{i}", "b_name": f"n{i}", "b_tags": [str(i)]} for i in range(250)])
    rows = conn.execute(sa.select(contacts.c.id, contacts.c.name, contacts.c.tags)).all()
    assert sorted((r.id, r.name, r.tags) for r in rows) == sorted(
        (f"c{i}", f"n{i}", [str(i)]) for i in range(250))
