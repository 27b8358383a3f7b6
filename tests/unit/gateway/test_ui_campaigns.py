"""The new campaign form as the REST body it becomes."""
import pytest

from crmhub.contracts.base import instance
from crmhub.contracts.campaigns import CampaignInputSchema
from crmhub.contracts.errors import InvalidInput
from crmhub.services.gateway.ui_campaigns import campaign_from_form

FORM = {"name": " Spring ", "tags_any": "vip, moscow,", "tags_all": "", "pipeline_id": "sales",
        "stage_key": "", "source_channel": "form", "source_connector": "",
        "last_activity_after": "2026-03-01", "last_activity_before": "", "subject": "Hi",
        "text": "Hello", "html": "", "rate_per_minute": "1200"}


def test_the_form_becomes_a_campaign_the_contract_accepts():
    body = campaign_from_form(FORM)
    assert body["segment"] == {"tags_any": ["vip", "moscow"], "tags_all": [],
                               "pipeline_id": "sales", "source_channel": "form",
                               "last_activity_after": "2026-03-01T00:00:00+00:00"}
    assert body["template"] == {"subject": "Hi", "text": "Hello", "html": None}
    loaded = instance(CampaignInputSchema).load(body)
    assert (loaded["name"], loaded["rate_per_minute"]) == ("Spring", 1200)


@pytest.mark.parametrize("field,value", [("last_activity_after", "01.03.2026"),
                                         ("rate_per_minute", "fast")])
def test_a_field_that_cannot_be_read_is_named(field, value):
    with pytest.raises(InvalidInput) as err:
        campaign_from_form({**FORM, field: value})
    assert field in err.value.details
