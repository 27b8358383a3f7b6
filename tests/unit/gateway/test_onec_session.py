"""The 1C exchange's session cookie and uploads: signed, expiring, confined to the session."""
import base64
import io

import pytest

from crmhub.services.gateway.onec_api import (
    ExchangeFailure,
    check_credentials,
    new_session,
    session_of,
    settings,
    store_chunk,
)

CONF = settings({"CONNECTORS": {"1c": {"username": "1c", "password": "пароль"}}})


def basic(user: str, password: str, encoding="utf-8") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode(encoding)).decode()


def test_a_session_cookie_names_its_session_until_it_expires():
    cookie = new_session(CONF, now=1000)
    session = session_of(CONF, cookie, now=1000 + 3600)
    assert session and cookie.startswith(session)
    with pytest.raises(ExchangeFailure, match="expired"):
        session_of(CONF, cookie, now=1000 + 13 * 3600)


@pytest.mark.parametrize("cookie", ["", "abc", "abc.123.deadbeef"])
def test_a_missing_or_forged_cookie_is_refused(cookie):
    with pytest.raises(ExchangeFailure) as refused:
        session_of(CONF, cookie)
    assert refused.value.status == 401


def test_a_new_password_ends_every_session():
    cookie = new_session(CONF)
    changed = settings({"CONNECTORS": {"1c": {"username": "1c", "password": "другой"}}})
    with pytest.raises(ExchangeFailure, match="invalid"):
        session_of(changed, cookie)


def test_credentials_in_utf8_or_windows_1251_are_accepted_and_wrong_ones_are_not():
    check_credentials(CONF, basic("1c", "пароль"))
    check_credentials(CONF, basic("1c", "пароль", "windows-1251"))
    for header in (None, "Bearer x", basic("1c", "wrong"), "Basic !!!"):
        with pytest.raises(ExchangeFailure) as refused:
            check_credentials(CONF, header)
        assert refused.value.status == 401
    with pytest.raises(ExchangeFailure) as unset:
        check_credentials(settings({}), basic("", ""))
    assert unset.value.status == 403


def test_uploads_are_appended_capped_and_kept_inside_the_session(tmp_path):
    assert store_chunk(tmp_path, "import.xml", io.BytesIO(b"<a>"), limit=10) == 3
    assert store_chunk(tmp_path, "import.xml", io.BytesIO(b"</a>"), limit=10) == 7
    assert (tmp_path / "import.xml").read_bytes() == b"<a></a>"
    with pytest.raises(ExchangeFailure) as too_big:
        store_chunk(tmp_path, "import.xml", io.BytesIO(b"x" * 10), limit=10)
    assert too_big.value.status == 413 and not (tmp_path / "import.xml").exists()
    with pytest.raises(ExchangeFailure, match="outside"):
        store_chunk(tmp_path / "s", "../../etc/x.xml", io.BytesIO(b"x"), limit=10)
