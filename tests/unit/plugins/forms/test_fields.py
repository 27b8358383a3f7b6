"""The field reading, contact mapping and tracking both form connectors share."""
import pytest

from crmhub.plugins.api import BadPayload, make_request
from crmhub.plugins.forms.fields import FieldMap, read_fields, tracking_from


def test_tilda_variable_names_match_the_default_names():
    contact = FieldMap().contact({"Name": ["Олег"], "Phone": ["+7 999 111-22-33"],
                                  "Email": ["o@example.com"], "Textarea": ["Вопрос"]})
    assert (contact.name, contact.phones, contact.emails, contact.message) == (
        "Олег", ["+7 999 111-22-33"], ["o@example.com"], "Вопрос")


def test_a_mapping_may_name_one_field_or_candidates_in_order():
    field_map = FieldMap({"message": ["question", "comment"], "phone": "tel"})
    contact = field_map.contact({"comment": ["second"], "question": ["first"],
                                 "tel": ["1"], "phone": ["not read"]})
    assert (contact.message, contact.phones) == ("first", ["1"])


def test_blank_values_are_not_a_way_to_reach_anyone():
    with pytest.raises(BadPayload):
        FieldMap().contact({"phone": ["  "], "email": [""]})


def test_tracking_takes_each_key_from_the_earliest_source_and_knows_aliases():
    tracking = tracking_from({"UTM_Source": ["field"], "other": ["x"]},
                             {"utm_source": "cookie", "roistat_visit": "77", "_ga": ""},
                             {"referrer": ["https://ya.ru/"], "_ga": ["GA1"]})
    assert tracking == {"utm_source": "field", "roistat": "77", "referer": "https://ya.ru/",
                        "_ga": "GA1"}


def test_a_broken_multipart_body_is_a_bad_payload():
    request = make_request(body=b"--x\r\nbroken",
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
    with pytest.raises(BadPayload, match="malformed multipart/form-data"):
        read_fields(request)
