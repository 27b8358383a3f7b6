"""One campaign email per recipient: the campaign's template rendered with the client's card,
then decorated for tracking (services/email/tracking.py).

The template parts are compiled once per batch of recipients (the email templates module
compiles per call, which a 100,000-recipient campaign would pay 300,000 times); they run in
the same sandboxes, with the same context (``client``) and strictness as every email
template.
"""
from __future__ import annotations

from jinja2 import TemplateError

from crmhub.services.email import templates
from crmhub.services.email.tracking import Links, track


def template_parts(campaign: dict) -> dict:
    """The campaign's template as the email templates module names its parts."""
    return {"subject": campaign["subject"], "text_body": campaign["text_body"],
            "html_body": campaign["html_body"]}


class CampaignTemplate:
    def __init__(self, campaign: dict):
        parts = template_parts(campaign)
        templates.check(parts)  # a syntax error: InvalidInput naming the part and line
        self._compiled = {part: templates.environment(part).from_string(source)
                          for part, source in parts.items() if source}

    def render(self, member: dict) -> dict:
        """``subject``, ``text_body``, ``html_body`` for a segment member (a card's fields and
        its email); InvalidInput naming the part at fault if the template fails for it."""
        context = templates.card_context({**member, "emails": [member["email"]]})
        rendered = {"html_body": None}
        for part, template in self._compiled.items():
            try:
                rendered[part] = template.render(context)
            except TemplateError as exc:
                raise templates.template_error(part, exc) from None
        rendered["subject"] = " ".join(rendered["subject"].split())
        return rendered


def campaign_email(template: CampaignTemplate, member: dict, links: Links) -> dict:
    """The tracked email of one recipient: ``subject``, ``text``, ``html``, ``headers``."""
    rendered = template.render(member)
    return track(rendered["subject"], rendered["text_body"], rendered["html_body"], links)
