"""The scripted histories the reporting tests check by hand: each a list of (event type,
payload) in delivery order, with out-of-order events, duplicate deliveries, merged cards and
deals moving backwards. Shared by the integration tests (projections on SQLite and PostgreSQL)
and the end-to-end test (the same events through RabbitMQ and a running hub)."""
from reporting_history import at, call, contact, deal, email, merged, tracked

from crmhub.contracts import events as ev

# -- sources -----------------------------------------------------------------------------------

GOOGLE = {"channel": "form", "connector": "tilda", "form": "order",
          "tracking": {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"}}
TILDA = {"channel": "form", "connector": "tilda", "form": "callback", "tracking": {}}
MANGO = {"channel": "call", "connector": "mango", "tracking": {}}


def sources_history():
    d1_won = deal(ev.DEAL_WON, "d1", "c1", 3, at(1), when=at(10), status="won",
                  amount="1000.00", source=GOOGLE, closed=at(10))
    return [
        contact("c1", at(0), GOOGLE, name="Ann"),
        contact("c2", at(1), GOOGLE),
        contact("c3", at(2), TILDA),
        contact("c4", at(3), MANGO, manager="boris"),
        contact("c5", at(4), GOOGLE),
        merged("c5", "c1", at(5)),                      # c5 is no lead of its own
        contact("c6", at(40), GOOGLE),                  # April: outside March
        contact("c7", at(6)),                           # no source at all
        # d1 arrives won first, then its creation and a stage change; won delivered twice.
        d1_won,
        deal(ev.DEAL_CREATED, "d1", "c1", 1, at(1), amount="1000.00", source=GOOGLE),
        deal(ev.DEAL_STAGE_CHANGED, "d1", "c1", 2, at(1), when=at(5), amount="1000.00",
             source=GOOGLE, stage_id=2),
        d1_won,
        # d2 has no source of its own (its card's: tilda); won, then moved back to open.
        deal(ev.DEAL_CREATED, "d2", "c3", 1, at(2), amount="500.00"),
        deal(ev.DEAL_WON, "d2", "c3", 2, at(2), when=at(5), status="won", amount="500.00",
             closed=at(5)),
        deal(ev.DEAL_STAGE_CHANGED, "d2", "c3", 3, at(2), when=at(6), amount="500.00"),
        deal(ev.DEAL_CREATED, "d3", "c4", 1, at(3), manager="boris"),
        deal(ev.DEAL_LOST, "d3", "c4", 2, at(3), when=at(4), status="lost", manager="boris",
             closed=at(4)),
        # d4: the merged card's deal, counted under that card's source (google).
        deal(ev.DEAL_WON, "d4", "c5", 2, at(6), when=at(7), status="won", amount="250.50",
             closed=at(7)),
        deal(ev.DEAL_CREATED, "d4", "c5", 1, at(6), amount="250.50"),
        # April deal: outside March.
        deal(ev.DEAL_CREATED, "d5", "c2", 1, at(40), amount="90.00"),
        deal(ev.DEAL_WON, "d5", "c2", 2, at(40), when=at(41), status="won", amount="90.00",
             closed=at(41)),
    ]


# -- calls -------------------------------------------------------------------------------------

S = 1 / 60  # a second, in minutes


def m(minutes):
    return at(minutes=minutes)  # minutes after 09:00 UTC, 2 March 2026


def calls_history():
    k1_answered = call(ev.CALL_ANSWERED, "k1", m(0), "+79000000001", answered=m(20 * S))
    return [
        # k1: answered after 20 s, 300 s of talk; finished arrives first, answered twice.
        call(ev.CALL_FINISHED, "k1", m(0), "+79000000001", answered=m(20 * S),
             ended=m(320 * S), outcome="answered", duration=300),
        k1_answered,
        call(ev.CALL_RINGING, "k1", m(0), "+79000000001"),
        k1_answered,
        # k2: missed after 40 s; called back by k3 ten minutes later.
        call(ev.CALL_RINGING, "k2", m(10), "+79000000002"),
        call(ev.CALL_MISSED, "k2", m(10), "+79000000002", ended=m(10 + 40 * S), outcome="missed"),
        call(ev.CALL_FINISHED, "k3", m(20), "+79000000002", direction="outbound",
             answered=m(20.5), ended=m(22), outcome="answered", duration=90),
        # k4: missed after 60 s at 10:00; the outbound attempt comes 29 minutes later.
        call(ev.CALL_MISSED, "k4", m(60), "+79000000003", ended=m(61), outcome="missed"),
        call(ev.CALL_MISSED, "k9", m(90), "+79000000003", direction="outbound", ended=m(91),
             outcome="missed"),
        # k5: missed after 30 s; the client calls again (k6) and gets through: called back.
        call(ev.CALL_MISSED, "k5", m(65), "+79000000004", ended=m(65.5), outcome="busy"),
        call(ev.CALL_FINISHED, "k6", m(72), "+79000000004", answered=m(72 + 10 * S),
             ended=m(73 + 10 * S), outcome="answered", duration=60, manager="boris"),
        # k7 still rings: not counted; k8 is in April.
        call(ev.CALL_RINGING, "k7", m(100), "+79000000005"),
        call(ev.CALL_MISSED, "k8", at(days=40), "+79000000006", ended=at(days=40, minutes=1),
             outcome="missed"),
    ]


# -- campaigns ---------------------------------------------------------------------------------

OPENED, CLICKED = ev.CAMPAIGN_EMAIL_OPENED, ev.CAMPAIGN_LINK_CLICKED


def campaigns_history():
    e1_sent = email(ev.EMAIL_SENT, "e1", "cmp1", "p1", at(0))
    return [
        e1_sent,
        e1_sent,                                                    # delivered twice
        # e2's bounce notice arrives before its email_sent.
        email(ev.EMAIL_BOUNCED, "e2", "cmp1", "p2", at(0), bounced=at(hours=1)),
        email(ev.EMAIL_SENT, "e2", "cmp1", "p2", at(0)),
        email(ev.EMAIL_SENT, "e3", "cmp1", "p3", at(0)),
        email(ev.EMAIL_SENT, "e4", "cmp1", "p4", at(0)),
        email(ev.EMAIL_SENT, "e5", None, "p1", at(0)),             # from a card: no campaign
        tracked(OPENED, "cmp1", "p1", at(hours=2)),
        tracked(OPENED, "cmp1", "p1", at(hours=3)),                 # every load is an event
        tracked(OPENED, "cmp1", "p3", at(hours=2)),
        tracked(OPENED, "cmp1", "p4", at(hours=4)),
        merged("p4", "p1", at(days=1)),                            # p4 and p1: one client
        tracked(CLICKED, "cmp1", "p1", at(hours=2), url="https://shop.example/a"),
        tracked(CLICKED, "cmp1", "p1", at(hours=2), url="https://shop.example/b"),
        tracked(CLICKED, "cmp1", "p3", at(hours=5)),
        tracked(ev.CAMPAIGN_UNSUBSCRIBE_REQUESTED, "cmp1", "p3", at(hours=6)),
        # An April campaign.
        email(ev.EMAIL_SENT, "e6", "cmp2", "p1", at(days=40)),
        tracked(OPENED, "cmp2", "p1", at(days=40, hours=1)),
    ]


# -- churn -------------------------------------------------------------------------------------

def purchase(did, cid, day, manager="anna"):
    """A deal won on ``day`` (days after 2 March 2026), its events out of order."""
    return [deal(ev.DEAL_WON, did, cid, 2, at(day), status="won", amount="100.00",
                 closed=at(day), manager=manager),
            deal(ev.DEAL_CREATED, did, cid, 1, at(day), amount="100.00", manager=manager)]


def churn_history():
    return [
        contact("c1", at(-5), name="Ann"),
        contact("c3", at(-5), name="Cora"),
        # Ann: every 10 days, last on 22 March: 100.625 days ago, 10.06 intervals.
        *purchase("a1", "c1", 0), *purchase("a2", "c1", 10), *purchase("a3", "c1", 20),
        *purchase("a3", "c1", 20),                                   # delivered twice
        # Bob: every 100 days, last on 10 June: not overdue.
        *purchase("b1", "c2", 0), *purchase("b2", "c2", 100),
        # Cora bought once; her other card c4 twice more (merged later): one client buying
        # every 30 days, last on 1 May: 60.625 days ago, 2.02 intervals.
        *purchase("k1", "c3", 0), *purchase("k2", "c4", 30, "boris"),
        *purchase("k3", "c4", 60, "boris"),
        merged("c4", "c3", at(70)),
        # Dan: a second deal won then moved back out of won: one purchase, no interval.
        *purchase("d1", "c5", 0), *purchase("d2", "c5", 10),
        deal(ev.DEAL_STAGE_CHANGED, "d2", "c5", 3, at(10), when=at(11), amount="100.00"),
    ]
