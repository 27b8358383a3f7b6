"""Campaign rules without a broker or database: tracking tokens, link rewriting, the email a
recipient gets, rate pacing and the card-side segment filters."""
import datetime as dt

import pytest

from crmhub.contracts.errors import InvalidInput
from crmhub.services.contacts.segments import matches_card
from crmhub.services.email import tracking
from crmhub.services.email.campaign_render import CampaignTemplate, campaign_email
from crmhub.services.email.campaigns import refill
from crmhub.services.email.tracking import CLICK, OPEN, UNSUBSCRIBE, Links, sign, verify

SECRET = b"test-secret"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


# -- tokens ------------------------------------------------------------------------------------

def test_a_token_proves_its_campaign_client_and_url():
    token = sign(SECRET, CLICK, "camp1", "card1", "https://shop.example/sale?a=1&b=2")
    tracked = verify(SECRET, token, CLICK)
    assert (tracked.campaign_id, tracked.contact_id, tracked.url) == (
        "camp1", "card1", "https://shop.example/sale?a=1&b=2")


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: sign(SECRET, CLICK, "camp1", "card1", "https://evil.example/").split(".")[0]
    + "." + t.split(".")[1],  # another URL under this token's signature
    lambda t: "garbage",
    lambda t: "",
    lambda t: "!!!.???",
])
def test_a_forged_or_broken_token_proves_nothing(mangle):
    token = sign(SECRET, CLICK, "camp1", "card1", "https://shop.example/")
    assert verify(SECRET, mangle(token), CLICK) is None


def test_a_token_is_only_good_for_its_kind_and_secret():
    opened = sign(SECRET, OPEN, "camp1", "card1")
    assert verify(SECRET, opened, UNSUBSCRIBE) is None
    assert verify(b"other-secret", opened, OPEN) is None
    assert verify(SECRET, opened, OPEN).contact_id == "card1"


# -- the email as sent -----------------------------------------------------------------------

CAMPAIGN = {"subject": "Spring sale for {{ client.name }}",
            "text_body": "Hello {{ client.name }}, see https://shop.example/sale",
            "html_body": '<html><body><p>Hello {{ client.name }}</p>'
                         '<a href="https://shop.example/sale?x=1&amp;y=2">Sale</a>'
                         "<a href='mailto:shop@example.com'>Write</a></body></html>"}
MEMBER = {"id": "card1", "email": "anna@example.com", "name": "Anna <b>", "company": None,
          "manager": None, "tags": ["vip"], "custom_fields": {}}


def sent(member=MEMBER):
    links = Links(SECRET, "https://hub.example", "camp1", member["id"])
    return campaign_email(CampaignTemplate(CAMPAIGN), member, links)


def test_links_go_through_the_click_redirect_and_come_back_decoded():
    email = sent()
    assert "https://shop.example/sale?x=1" not in email["html"]
    token = email["html"].split("https://hub.example/t/c/")[1].split('"')[0]
    assert verify(SECRET, token, CLICK).url == "https://shop.example/sale?x=1&y=2"
    assert "mailto:shop@example.com" in email["html"]  # not a web link: left alone


def test_every_email_has_the_pixel_the_unsubscribe_link_and_one_click_headers():
    email = sent()
    unsubscribe = email["headers"]["List-Unsubscribe"].strip("<>")
    assert email["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert verify(SECRET, unsubscribe.rsplit("/", 1)[1], UNSUBSCRIBE).contact_id == "card1"
    assert f"Unsubscribe: {unsubscribe}" in email["text"]
    assert unsubscribe in email["html"] and "/t/o/" in email["html"]
    assert email["html"].index("/t/o/") < email["html"].index("</body>")


def test_the_template_sees_the_client_and_escapes_html():
    email = sent()
    assert email["subject"] == "Spring sale for Anna <b>"
    assert "Hello Anna &lt;b&gt;" in email["html"]


def test_a_broken_template_is_refused_naming_the_part():
    with pytest.raises(InvalidInput) as err:
        CampaignTemplate({**CAMPAIGN, "text_body": "Hi {{ client.name "})
    assert "text_body" in err.value.details


def test_a_field_the_card_lacks_fails_that_recipient_only():
    template = CampaignTemplate({**CAMPAIGN, "text_body": "{{ client.discount_code }}"})
    with pytest.raises(InvalidInput):
        template.render(MEMBER)
    assert "CODE1" in template.render({**MEMBER, "custom_fields": {"discount_code": "CODE1"}})[
        "text_body"]


# -- rate pacing -------------------------------------------------------------------------------

def test_the_bucket_fills_at_the_rate():
    assert refill(0.0, T0, T0 + dt.timedelta(seconds=1), rate_per_minute=600) == pytest.approx(10)
    assert refill(2.5, T0, T0 + dt.timedelta(seconds=0.5), rate_per_minute=120) == pytest.approx(3.5)


def test_a_pause_is_not_made_up_in_a_flood():
    after_an_hour = refill(0.0, T0, T0 + dt.timedelta(hours=1), rate_per_minute=600)
    assert after_an_hour == pytest.approx(50)  # five seconds' worth
    assert refill(0.0, T0, T0 + dt.timedelta(hours=1), 600, burst_seconds=2) == pytest.approx(20)


def test_a_slow_rate_still_sends_one_at_a_time():
    assert refill(0.0, T0, T0 + dt.timedelta(minutes=5), rate_per_minute=1) == 1.0


def test_over_a_minute_the_queued_count_matches_the_rate():
    credit, at, queued = 0.0, T0, 0
    for tick in range(1, 61):
        now = T0 + dt.timedelta(seconds=tick)
        credit = refill(credit, at, now, rate_per_minute=1200)
        take = int(credit)
        queued, credit, at = queued + take, credit - take, now
    assert queued == 1200


# -- segment filters on a card -------------------------------------------------------------------

CARD = {"tags": ["vip", "moscow"], "source": {"channel": "form", "connector": "tilda"},
        "last_activity": T0}


@pytest.mark.parametrize("segment,expected", [
    ({}, True),
    ({"tags_any": ["vip", "spb"]}, True),
    ({"tags_any": ["spb"]}, False),
    ({"tags_all": ["vip", "moscow"]}, True),
    ({"tags_all": ["vip", "spb"]}, False),
    ({"source_channel": "form"}, True),
    ({"source_channel": "call"}, False),
    ({"source_connector": "tilda", "source_channel": "form"}, True),
    ({"last_activity_after": T0}, True),
    ({"last_activity_after": T0 + dt.timedelta(seconds=1)}, False),
    ({"last_activity_before": T0}, False),
    ({"last_activity_before": T0 + dt.timedelta(days=1), "tags_any": ["vip"]}, True),
])
def test_card_filters(segment, expected):
    assert matches_card(CARD, segment) is expected


def test_a_card_without_source_matches_no_source_filter():
    assert matches_card({"tags": [], "source": None, "last_activity": T0},
                        {"source_channel": "form"}) is False


def test_base_url_defaults_to_the_web_address():
    assert tracking.base_url({"WEB_SERVER_ADDRESS": "127.0.0.1:9000"}) == "http://127.0.0.1:9000"
    assert tracking.base_url({"TRACKING_BASE_URL": "https://crm.example/"}) == "https://crm.example"
