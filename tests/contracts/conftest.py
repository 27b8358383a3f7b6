"""Realistic payloads for every catalog entry, as their producers put them on the wire.

A new event or RPC method in the catalogs needs an example here: the tests check that both
tables cover their catalog exactly.
"""
import copy
import datetime as dt

import pytest

from crmhub.contracts import calls, catalog, contacts, deals, events
from crmhub.contracts.base import instance, new_event

T0 = dt.datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(minutes=5)
MSK = dt.timezone(dt.timedelta(hours=3))

TRACKING = {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "spring-sale",
            "utm_content": None, "utm_term": "crm для бизнеса", "utm_id": None,
            "yclid": "7433512345678901234", "gclid": None, "fbclid": None,
            "_ym_uid": "1700000000123456789", "_ga": "GA1.2.123456789.1700000000",
            "roistat": None, "referer": "https://yandex.ru/", "page_url": "https://shop.example/contacts"}

CONTACT = {
    "id": "c-5f2d1e0a9b",
    "kind": "person",
    "name": "Анна Петрова",
    "company": "ООО Ромашка",
    "phones": [{"raw": "8 (916) 123-45-67", "e164": "+79161234567", "extension": None},
               {"raw": "call me at work", "e164": None, "extension": None}],
    "emails": ["anna@example.com"],
    "source": {"channel": "form", "connector": "forms", "form": "contact-us",
               "tracking": TRACKING},
    "manager": "olga",
    "tags": ["vip", "spring-sale"],
    "custom_fields": {"inn": "7701234567", "segment": "b2b"},
    "created_at": T0,
    "updated_at": T1,
    "merged_ids": ["c-0a0a0a0a0a"],
}

TIMELINE_ENTRY = {"id": 42, "contact_id": "c-5f2d1e0a9b", "kind": "form_submitted",
                  "occurred_at": T0, "title": "Form «Contact us» submitted",
                  "source_key": "evt-0c8e3f1b2a4d", "data": {"form": "contact-us", "page": 3}}

STAGE = {"id": 12, "key": "proposal", "name": "Начали готовить КП", "position": 4,
         "kind": "open", "task": "Подготовить коммерческое предложение.",
         "result": "КП готово и согласовано внутри компании.",
         "key_steps": ["Менеджер готовит КП", "Руководитель утверждает цену"],
         "on_goods_arrival": None}
PIPELINE = {"id": "cleaning-services", "name": "Клининговые услуги для бизнеса",
            "template": "cleaning-services", "managers": ["olga", "pavel"], "created_at": T0,
            "stages": [{**STAGE, "id": 8, "key": "potential-client", "position": 0,
                        "name": "Потенциальный клиент"}, STAGE,
                       {**STAGE, "id": 20, "key": "fully-paid", "position": 11, "kind": "won",
                        "name": "Получена полная оплата"}]}
DEAL = {"id": "d-7c1e2f", "title": "Уборка офиса, ООО Ромашка", "contact_id": "c-5f2d1e0a9b",
        "pipeline_id": "cleaning-services", "pipeline_name": "Клининговые услуги для бизнеса",
        "contact_name": "Анна Петрова", "stage_id": 12, "stage_name": "Начали готовить КП",
        "status": "open", "manager": "olga",
        "amount": "185000.00", "currency": "RUB", "source": CONTACT["source"],
        "products": [{"sku": "CLN-OFFICE-M", "product_id": "5a1c7e2b-3f4d-11ef-9a1b-00155d01c2e3",
                      "name": "Уборка офиса, месяц", "quantity": "1.000", "price": "185000.00"}],
        "close_reason": None, "version": 3, "created_at": T0, "updated_at": T1,
        "closed_at": None}
CHANGE = {"id": 77, "deal_id": "d-7c1e2f", "from_stage_id": 8,
          "from_stage_name": "Потенциальный клиент", "to_stage_id": 12,
          "to_stage_name": "Начали готовить КП", "actor": "olga", "reason": None, "version": 3,
          "changed_at": T1}
WON_CHANGE = {**CHANGE, "to_stage_id": 20, "to_stage_name": "Получена полная оплата",
              "reason": "договор на год"}
TASK = {"id": "t-9a8b7c", "title": "Call back within 15 minutes", "due_at": T1,
        "manager": "olga", "contact_id": "c-5f2d1e0a9b", "deal_id": "d-7c1e2f", "done": False,
        "done_at": None, "reminded_at": None, "created_by": "lead_rule:config-1",
        "created_at": T0}
MANAGER = {"id": "olga", "name": "Ольга Смирнова", "role": "manager",
           "email": "olga@example.com", "active": True}
LEAD_RULE = {"connector": "forms", "form": "contact-us", "pipeline": "b2b-sales",
             "task_title": "Перезвонить в течение 15 минут", "task_due_minutes": 15,
             "enabled": True}

EVENT_BODIES = {
    events.DEAL_CREATED: {"deal": {**DEAL, "version": 1}, "cause": "lead_rule:config-1"},
    events.DEAL_UPDATED: {"deal": DEAL, "changed": ["amount", "products"]},
    events.DEAL_STAGE_CHANGED: {"deal": DEAL, "change": CHANGE},
    events.DEAL_WON: {"deal": {**DEAL, "stage_id": 20, "status": "won", "closed_at": T1,
                               "close_reason": "договор на год"}, "change": WON_CHANGE},
    events.DEAL_LOST: {"deal": {**DEAL, "status": "lost", "closed_at": T1,
                                "close_reason": "выбрали другого подрядчика"},
                       "change": {**CHANGE, "reason": "выбрали другого подрядчика"}},
    events.TASK_CREATED: {"task": TASK, "actor": "lead_rule:config-1"},
    events.TASK_UPDATED: {"task": TASK, "actor": "olga", "changed": ["due_at"]},
    events.TASK_COMPLETED: {"task": {**TASK, "done": True, "done_at": T1}, "actor": "olga"},
    events.TASK_DUE: {"task": {**TASK, "reminded_at": T1}, "actor": None},
    events.GOODS_ARRIVED: {
        "deal": {**DEAL, "stage_name": "Товар поступил на склад", "version": 4,
                 "erp": {"number": "УТ-000123", "status": "Ожидается поставка", "paid": True,
                         "shipped": None, "cancelled": None, "updated_at": T0}},
        "items": [{"offer_id": "5a1c7e2b-3f4d-11ef-9a1b-00155d01c2e3#9e8d7c6b-3f4d-11ef-9a1b-00155d01c2e3",
                   "product_id": "5a1c7e2b-3f4d-11ef-9a1b-00155d01c2e3",
                   "name": "Уборка офиса, месяц", "warehouse_id": "b3f1c2d4-3f4d-11ef-9a1b-00155d01c2e3",
                   "quantity": "12.000"}],
        "import_id": "9c0f3e2a1b4d"},
    events.FORM_SUBMITTED: {
        "idempotency_key": "forms:5b9f0c1d2e3f",
        "connector": "forms",
        "form": "contact-us",
        "form_name": "Contact us",
        "contact": {"name": "Анна Петрова", "company": None, "phones": ["+7 916 123-45-67"],
                    "emails": ["anna@example.com"]},
        "message": "Перезвоните после обеда, пожалуйста",
        "fields": {"name": "Анна Петрова", "phone": "+7 916 123-45-67",
                   "email": "anna@example.com", "utm_source": "yandex"},
        "tracking": TRACKING,
        "remote_addr": "198.51.100.7",
        "received_at": T0,
    },
    events.CONTACT_CREATED: {"contact": CONTACT, "cause": "form_submitted:evt-0c8e3f1b2a4d"},
    events.CONTACT_UPDATED: {"contact": CONTACT, "changed": ["phones", "tags"]},
    events.CONTACTS_MERGED: {"source_id": "c-0a0a0a0a0a", "target_id": "c-5f2d1e0a9b"},
    events.TIMELINE_ENTRY_ADDED: {"entry": TIMELINE_ENTRY},
}

CARD = instance(contacts.CardSchema).dump({**CONTACT, "timeline": [TIMELINE_ENTRY]})
RPC_PAYLOADS = {
    ("contacts.search", "request"): {"q": "Анна", "phone": None, "limit": 20, "offset": 0},
    ("contacts.search", "response"): instance(contacts.ContactPageSchema).dump(
        {"items": [CONTACT], "total": 1, "limit": 20, "offset": 0}),
    ("contacts.get", "response"): CARD,
    ("contacts.get_contact", "response"): instance(contacts.ContactSchema).dump(CONTACT),
    ("contacts.create", "request"): {
        "kind": "company", "name": None, "company": "ООО Ромашка",
        "phones": ["+7 495 123-45-67"], "emails": ["office@romashka.example"],
        "manager": "olga", "tags": ["b2b"], "custom_fields": {"inn": "7701234567"},
        "source": {"channel": "api", "connector": None, "form": None, "tracking": {}}},
    ("contacts.create", "response"): CARD,
    ("contacts.update", "request"): {"name": "Анна Сергеевна Петрова", "tags": ["vip"],
                                     "phones": ["+79161234567", "8 800 555-35-35"]},
    ("contacts.update", "response"): CARD,
    ("contacts.merge", "request"): {"source_id": "c-0a0a0a0a0a", "target_id": "c-5f2d1e0a9b"},
    ("contacts.merge", "response"): CARD,
    ("contacts.get_many", "request"): {"ids": ["c-5f2d1e0a9b", "c-0a0a0a0a0a", "c-gone"]},
    ("contacts.get_many", "response"): instance(contacts.ContactListSchema).dump({
        "items": [CONTACT], "resolved": {"c-5f2d1e0a9b": "c-5f2d1e0a9b",
                                         "c-0a0a0a0a0a": "c-5f2d1e0a9b"},
        "missing": ["c-gone"]}),
}


def dumped(schema, value):
    return instance(schema).dump(value)


DEAL_CARD = dumped(deals.DealCardSchema, {**DEAL, "history": [CHANGE], "tasks": [TASK]})
RPC_PAYLOADS.update({
    ("deals.list_pipelines", "response"): dumped(deals.PipelineListSchema, {"items": [PIPELINE]}),
    ("deals.get_pipeline", "response"): dumped(deals.PipelineSchema, PIPELINE),
    ("deals.create_pipeline", "request"): {
        "id": "repairs", "name": "Ремонт квартир",
        "stages": [{"name": "Заявка", "task": "Выехать на замер", "result": "Смета",
                    "key_steps": ["Прораб выезжает на замер"]},
                   {"key": "done", "name": "Сдано", "kind": "won"},
                   {"name": "Отказ", "kind": "lost"}]},
    ("deals.create_pipeline", "response"): dumped(deals.PipelineSchema, PIPELINE),
    ("deals.list_templates", "response"): {"items": [
        {"name": "distribution", "title": "Дистрибуция", "description": "Оптовый заказ",
         "stages": ["Планируемый заказ", "Заказ согласован"], "loaded": False}]},
    ("deals.load_template", "response"): dumped(deals.TemplateLoadedSchema,
                                                {"pipeline": PIPELINE, "created": True}),
    ("deals.set_pipeline_managers", "request"): {"managers": ["olga", "pavel"]},
    ("deals.set_pipeline_managers", "response"): dumped(deals.PipelineSchema, PIPELINE),
    ("deals.list_managers", "response"): {"items": [MANAGER]},
    ("deals.put_manager", "request"): {"name": "Ольга Смирнова", "role": "manager",
                                       "email": "olga@example.com", "active": True},
    ("deals.put_manager", "response"): MANAGER,
    ("deals.search_deals", "request"): {"pipeline_id": "cleaning-services", "stage_id": 12,
                                        "status": "open", "manager": "olga",
                                        "contact_id": None, "limit": 20, "offset": 0},
    ("deals.search_deals", "response"): dumped(deals.DealPageSchema, {
        "items": [DEAL], "total": 1, "limit": 20, "offset": 0}),
    ("deals.open_deals", "request"): {"after_id": "d-5a01", "limit": 500},
    ("deals.open_deals", "response"): dumped(deals.OpenDealsPageSchema, {
        "items": [DEAL], "next_after": None}),
    ("deals.board", "request"): {"per_stage": 20, "manager": "olga"},
    ("deals.board", "response"): dumped(deals.BoardSchema, {
        "pipeline_id": "cleaning-services", "pipeline_name": "Клининговые услуги для бизнеса",
        "manager": "olga", "per_stage": 20, "count": 2,
        "totals": [{"currency": "RUB", "amount": "185000.00", "count": 1},
                   {"currency": "USD", "amount": "0.00", "count": 1}],
        "columns": [
            {"stage": PIPELINE["stages"][0], "count": 0, "totals": [], "deals": []},
            {"stage": STAGE, "count": 2,
             "totals": [{"currency": "RUB", "amount": "185000.00", "count": 1},
                        {"currency": "USD", "amount": "0.00", "count": 1}],
             "deals": [DEAL, {**DEAL, "id": "d-11aa", "amount": None, "currency": "USD",
                              "contact_name": None, "updated_at": T0}]},
            {"stage": PIPELINE["stages"][2], "count": 0, "totals": [], "deals": []}]}),
    ("deals.get_deal", "response"): DEAL_CARD,
    ("deals.create_deal", "request"): {
        "contact_id": "c-5f2d1e0a9b", "pipeline_id": "cleaning-services", "stage_id": None,
        "title": "Уборка офиса", "manager": "olga", "amount": "185000.00", "currency": "RUB",
        "source": {"channel": "api", "connector": None, "form": None, "tracking": {}},
        "products": [{"sku": "CLN-OFFICE-M", "name": None, "quantity": "1", "price": "185000"}]},
    ("deals.create_deal", "response"): DEAL_CARD,
    ("deals.update_deal", "request"): {"amount": "190000.00", "manager": "pavel",
                                       "expected_version": 3},
    ("deals.update_deal", "response"): DEAL_CARD,
    ("deals.move_deal", "request"): {"stage_id": 20, "reason": "договор на год",
                                     "expected_version": 3},
    ("deals.move_deal", "response"): DEAL_CARD,
    ("deals.search_tasks", "request"): {"manager": "olga", "done": False, "deal_id": None,
                                        "contact_id": None,
                                        "due_before": "2026-03-15T00:00:00+03:00",
                                        "limit": 50, "offset": 0},
    ("deals.search_tasks", "response"): dumped(deals.TaskPageSchema, {
        "items": [TASK], "total": 1, "limit": 50, "offset": 0}),
    ("deals.get_task", "response"): dumped(deals.TaskSchema, TASK),
    ("deals.create_task", "request"): {"title": "Отправить КП", "due_at": "2026-03-16T10:00:00+03:00",
                                       "manager": "olga", "contact_id": "c-5f2d1e0a9b",
                                       "deal_id": "d-7c1e2f"},
    ("deals.create_task", "response"): dumped(deals.TaskSchema, TASK),
    ("deals.update_task", "request"): {"done": True},
    ("deals.update_task", "response"): dumped(deals.TaskSchema, {**TASK, "done": True,
                                                                 "done_at": T1}),
    ("deals.list_lead_rules", "response"): {"items": [
        {**LEAD_RULE, "id": "5e0c", "origin": "api"},
        {**LEAD_RULE, "form": None, "id": "config-1", "origin": "config"}]},
    ("deals.put_lead_rule", "request"): LEAD_RULE,
    ("deals.put_lead_rule", "response"): {**LEAD_RULE, "id": "5e0c", "origin": "api"},
    ("deals.orders_for_erp", "request"): {"limit": 500},
    ("deals.orders_for_erp", "response"): dumped(deals.ErpOrderPageSchema, {"items": [{
        "id": "d-7c1e2f", "number": "CRM-1042", "created_at": T0.astimezone(MSK),
        "currency": "RUB", "amount": "185000.00", "comment": "Уборка офиса, ООО Ромашка",
        "status": "Начали готовить КП", "status_changed_at": T1.astimezone(MSK),
        "manager": "Ольга Смирнова",
        "client": {"id": "c-5f2d1e0a9b", "name": "Анна Петрова", "phones": ["+79161234567"],
                   "emails": ["anna@example.com"]},
        "lines": [{"product_id": "5a1c7e2b-3f4d-11ef-9a1b-00155d01c2e3", "sku": "CLN-OFFICE-M",
                   "name": "Уборка офиса, месяц", "quantity": "1.000", "price": "185000.00"},
                  {"product_id": None, "sku": "EXTRA", "name": None, "quantity": "2.500",
                   "price": "0.00"}],
        "version": 3}]}),
    ("deals.mark_orders_exported", "request"): {"items": [{"id": "d-7c1e2f", "version": 3}]},
    ("deals.mark_orders_exported", "response"): {"marked": 1, "stale": []},
    ("deals.apply_erp_order_changes", "request"): {"changes": [{
        "order_id": "d-7c1e2f", "number": "CRM-1042", "erp_number": "УТ-000123",
        "operation": "Заказ товара", "status": "Отгружен", "status_id": "F", "paid": True,
        "shipped": True, "cancelled": False, "posted": True, "deleted": False,
        "amount": "185000.0000", "requisites": {"Статус заказа": "Отгружен", "Проведен": "true"}}]},
    ("deals.apply_erp_order_changes", "response"): {"applied": 1,
                                                    "unknown": ["7d3e5f60-1c00-11ef-8f2a-00155d012345"]},
})

CALL = {"id": "k-3b1f2c", "provider": "mango", "call_key": "MToxMDE0MzE6OTAwOjQyOTc1MjE4Mw==",
        "direction": "inbound", "status": "finished", "outcome": "answered",
        "cause": "1110 caller hung up", "client_number": "+79161234567",
        "client_number_raw": "79161234567", "line": "74951234567", "extension": "101",
        "manager": "olga", "contact_id": "c-5f2d1e0a9b", "created_at": T0,
        "answered_at": T0 + dt.timedelta(seconds=12), "ended_at": T1, "duration_s": 288,
        "legs": [{"leg_id": "MToxMDE0MzE6OTAwOjQyOTc1MjE4NA==", "extension": "101",
                  "state": "ended", "sequence": 4, "at": T1}],
        "recording": None, "command_id": None, "requested_by": None, "updated_at": T1}
RECORDED_CALL = {**CALL, "recording": {
    "ref": "MToxMDE0MzE6OTAwOjQyOTc1MjE4Mzow", "stored": True, "content_type": "audio/mpeg",
    "size": 1152044, "url": "/api/v1/calls/k-3b1f2c/recording"}}
CALLER = {"contact_id": "c-5f2d1e0a9b", "known": True, "name": "Анна Петрова",
          "company": "ООО Ромашка", "manager": "olga", "number": "+79161234567",
          "open_deals": [{"id": "d-7c1e2f", "title": "Уборка офиса, ООО Ромашка",
                          "pipeline_name": "Клининговые услуги для бизнеса",
                          "stage_name": "Начали готовить КП", "amount": "185000.00",
                          "currency": "RUB", "manager": "olga"}],
          "last_interactions": [{"kind": "form_submitted", "occurred_at": T0,
                                 "title": "Form «Contact us» submitted"}]}
EVENT_BODIES.update({
    events.CALL_SIGNAL: {
        "idempotency_key": "mango:call:MToxMDE0MzE6OTAwOjQyOTc1MjE4Mw==:2", "provider": "mango",
        "call_key": "MToxMDE0MzE6OTAwOjQyOTc1MjE4Mw==", "leg_id": "MToxMDE0MzE6OTAwOjQyOTc1MjE4NA==",
        "sequence": 2, "kind": "ringing", "final": False, "direction": "inbound",
        "client_number": "79161234567", "line": "74951234567", "extension": "101", "at": T0,
        "started_at": None, "answered_at": None, "ended_at": None, "duration_s": None,
        "outcome": None, "cause": None, "recording_ref": None, "command_id": None,
        "details": {"location": "abonent", "call_state": "Appeared"}},
    events.CALL_RINGING: {"call": {**CALL, "status": "ringing", "outcome": None, "cause": None,
                                   "answered_at": None, "ended_at": None, "duration_s": None},
                          "extensions": ["101"], "managers": ["olga"], "caller": CALLER},
    events.CALL_ANSWERED: {"call": {**CALL, "status": "answered", "outcome": None,
                                    "cause": None, "ended_at": None, "duration_s": None}},
    events.CALL_FINISHED: {"call": CALL},
    events.CALL_MISSED: {"call": {**CALL, "outcome": "missed", "answered_at": None,
                                  "duration_s": 0}},
    events.RECORDING_FOUND: {"call": {**CALL, "recording": {
        "ref": "MToxMDE0MzE6OTAwOjQyOTc1MjE4Mzow", "stored": False, "content_type": None,
        "size": None, "url": None}}, "recording_ref": "MToxMDE0MzE6OTAwOjQyOTc1MjE4Mzow"},
    events.RECORDING_READY: {"call": RECORDED_CALL},
})
EXTENSION = {"extension": "101", "manager": "olga", "provider": "mango"}
RPC_PAYLOADS.update({
    ("contacts.identify_caller", "request"): {"number": "79161234567", "create": True,
                                              "provider": "mango", "line": "74951234567",
                                              "call_id": "k-3b1f2c", "summary": True},
    ("contacts.identify_caller", "response"): dumped(calls.CallerSchema, {**CALLER,
                                                                          "open_deals": []}),
    ("telephony.place_call", "request"): {"contact_id": "c-5f2d1e0a9b", "number": None,
                                          "extension": None, "manager": "olga", "line": None,
                                          "provider": None},
    ("telephony.place_call", "response"): dumped(calls.CallSchema, {
        **CALL, "call_key": None, "direction": "outbound", "status": "dialing", "outcome": None,
        "cause": None, "answered_at": None, "ended_at": None, "duration_s": None, "legs": [],
        "command_id": "k-3b1f2c", "requested_by": "olga"}),
    ("telephony.get_call", "response"): dumped(calls.CallSchema, RECORDED_CALL),
    ("telephony.search_calls", "request"): {"contact_id": "c-5f2d1e0a9b", "manager": None,
                                            "status": "finished", "outcome": None, "limit": 20,
                                            "offset": 0},
    ("telephony.search_calls", "response"): dumped(calls.CallPageSchema, {
        "items": [RECORDED_CALL], "total": 1, "limit": 20, "offset": 0}),
    ("telephony.recording_file", "response"): {"call_id": "k-3b1f2c", "key": "call-k-3b1f2c",
                                               "content_type": "audio/mpeg", "size": 1152044},
    ("telephony.list_extensions", "response"): {"items": [EXTENSION]},
    ("telephony.put_extension", "request"): {"manager": "olga", "provider": "mango"},
    ("telephony.put_extension", "response"): EXTENSION,
    ("telephony.delete_extension", "response"): {"items": []},
})

# -- the catalog (1C) ----------------------------------------------------------------------------
OFFER = "5a1c7e2b-3f4d-11ef-9a1b-00155d01c2e3#9e8d7c6b-3f4d-11ef-9a1b-00155d01c2e3"
EVENT_BODIES.update({
    events.STOCK_CHANGED: {"import_id": "9c0f3e2a1b4d", "items": [
        {"offer_id": OFFER, "product_id": OFFER.partition("#")[0],
         "warehouse_id": "b3f1c2d4-3f4d-11ef-9a1b-00155d01c2e3", "quantity": "12.000",
         "previous": "0.000", "arrived": True},
        {"offer_id": "7f00aa11-3f4d-11ef-9a1b-00155d01c2e3",
         "product_id": "7f00aa11-3f4d-11ef-9a1b-00155d01c2e3", "warehouse_id": "",
         "quantity": "3", "previous": None, "arrived": True}]},
    events.PRICE_CHANGED: {"import_id": "9c0f3e2a1b4d", "items": [
        {"offer_id": OFFER, "product_id": OFFER.partition("#")[0],
         "price_type_id": "bd72d8f9-55bc-11d9-848a-00112f43529a", "amount": "4500.50",
         "previous": "4200.00", "currency": "RUB"}]},
    events.CATALOG_IMPORTED: {"job": {
        "id": "9c0f3e2a1b4d", "session": "s-2026-03-14", "filename": "offers0_1.xml",
        "kind": "offers", "source": "1c", "state": "done", "error": None, "read": 1520,
        "bytes_read": 1893344, "bytes_total": 1893344,
        "counts": {"products": 0, "offers": 1520, "unchanged": 0, "changed_products": 0, "changed_offers": 12,
                   "changed_prices": 40, "changed_stock": 17, "deactivated": 0, "arrivals": 2},
        "created_at": T0, "finished_at": T1}},
})
IMPORT_JOB = dumped(catalog.ImportJobSchema, EVENT_BODIES[events.CATALOG_IMPORTED]["job"])
PRODUCT = {
    "id": OFFER, "product_id": OFFER.partition("#")[0],
    "characteristic_id": OFFER.partition("#")[2], "article": "ПМ-421-WP", "barcode": "8809288404089",
    "name": "Коврик портативный 140x200 (синий)", "unit": "шт", "characteristics": {"Цвет": "синий"},
    "groups": ["Товары для отдыха"], "properties": {"Материал": "полиэстер"}, "active": True,
    "prices": [{"price_type_id": "bd72d8f9-55bc-11d9-848a-00112f43529a", "price_type": "Розничная",
                "amount": "4500.50", "currency": "RUB"}],
    "stock": [{"warehouse_id": "b3f1c2d4-3f4d-11ef-9a1b-00155d01c2e3", "warehouse": "Склад Москва",
               "quantity": "12.000"}],
    "in_stock": "12.000", "updated_at": T1}
RPC_PAYLOADS.update({
    ("catalog.search_products", "request"): {"q": "коврик", "ids": None, "in_stock": True,
                                             "include_inactive": False, "limit": 20, "offset": 0},
    ("catalog.search_products", "response"): dumped(catalog.ProductPageSchema, {
        "items": [PRODUCT], "limit": 20, "offset": 0, "more": False}),
    ("catalog.import_file", "request"): {"session": "3f9a1c2b7d", "filename": "offers0_1.xml",
                                         "source": "1c"},
    ("catalog.import_file", "response"): IMPORT_JOB,
    ("catalog.get_import", "response"): IMPORT_JOB,
    ("catalog.list_imports", "response"): {"items": [IMPORT_JOB]},
})


# -- messenger conversations (Telegram, WhatsApp) ------------------------------------------------
from crmhub.contracts import messages as chat  # noqa: E402 - kept with its examples

SENDER = {"id": "412345678", "username": "anna_s", "name": "Анна Смирнова", "phone": None}
PHOTO = {"kind": "photo", "file_id": "AgACAgIAAxkBAAIBsmF-large", "mime": None, "size": 182044,
         "name": None, "width": 1280, "height": 960, "too_large": False}
MESSAGE_ROW = {
    "id": "m-1a2b3c", "conversation_id": "v-4d5e6f", "contact_id": "c-5f2d1e0a9b",
    "provider": "telegram", "account": "shop", "direction": "outbound", "status": "sent",
    "text": "Доставка в Казань — 500 ₽", "attachments": [], "provider_message_id": "1001",
    "idempotency_key": "reply-000001", "author": "olga", "error": None, "attempts": 1,
    "created_at": T0, "updated_at": T1}
MESSAGE = dumped(chat.MessageSchema, MESSAGE_ROW)
EVENT_BODIES.update({
    events.MESSAGE_INCOMING: {
        "idempotency_key": "telegram:shop:804113003", "provider": "telegram", "account": "shop",
        "chat_id": "412345678", "provider_message_id": "19", "sender": SENDER,
        "text": "Вот такой диван нужен", "attachments": [PHOTO], "sent_at": T0},
    events.MESSAGE_STATUS: {
        "idempotency_key": "whatsapp:1122334455667:wamid.xyzxyz:failed", "provider": "whatsapp",
        "account": "1122334455667", "provider_message_id": "wamid.xyzxyz", "status": "failed",
        "error": "131026: Message undeliverable", "at": T1},
    events.MESSAGE_RECEIVED: {"message": {**MESSAGE_ROW, "direction": "inbound", "status": "received",
                                          "author": None, "idempotency_key": None,
                                          "attachments": [PHOTO]},
                              "conversation_title": "Анна Смирнова"},
    events.MESSAGE_SENT: {"message": {**MESSAGE_ROW, "status": "queued", "provider_message_id": None,
                                      "attempts": 0}, "conversation_title": "Анна Смирнова"},
    events.MESSAGE_STATUS_CHANGED: {"message": MESSAGE_ROW, "conversation_title": "Анна Смирнова"},
})
CONVERSATION = {"id": "v-4d5e6f", "contact_id": "c-5f2d1e0a9b", "provider": "telegram",
                "account": "shop", "chat_id": "412345678", "title": "Анна Смирнова",
                "last_message_at": MESSAGE["created_at"], "messages": [MESSAGE]}
RPC_PAYLOADS.update({
    ("contacts.identify_sender", "request"): {"provider": "telegram", "account": "shop",
                                              "sender": SENDER},
    ("contacts.identify_sender", "response"): {"contact_id": "c-5f2d1e0a9b", "created": True},
    ("messenger.send_message", "request"): {
        "contact_id": "c-5f2d1e0a9b", "contact_ids": [], "text": "Доставка в Казань — 500 ₽",
        "conversation_id": None, "provider": None, "idempotency_key": "reply-000001"},
    ("messenger.send_message", "response"): MESSAGE,
    ("messenger.conversations", "request"): {"contact_ids": ["c-5f2d1e0a9b"], "messages": 30},
    ("messenger.conversations", "response"): {"items": [CONVERSATION]},
    ("messenger.get_message", "response"): MESSAGE,
})

# -- email: sending, threads, templates ------------------------------------------------------------
from crmhub.contracts import email as mail  # noqa: E402 - kept with its examples

OUTGOING_EMAIL = {
    "id": "0f3a9c1e5b7d4e2a8c6b1d3f5a7e9c0b", "contact_id": "c-5f2d1e0a9b", "campaign_id": None,
    "from_addr": "sales@romashka.example", "to_addr": "anna@client.example",
    "subject": "Коммерческое предложение", "message_id": "<0f3a9c1e5b7d4e2a@romashka.example>",
    "thread_id": "0f3a9c1e5b7d4e2a8c6b1d3f5a7e9c0b", "in_reply_to": None, "template": "offer",
    "status": "sent", "attempts": 1, "last_error": None, "created_at": T0, "sent_at": T1,
    "bounced_at": None, "bounce_reason": None}
RECEIVED_EMAIL = {
    "id": "7e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b", "mailbox": "sales",
    "message_id": "<reply-1@client.example>", "in_reply_to": OUTGOING_EMAIL["message_id"],
    "thread_id": OUTGOING_EMAIL["thread_id"], "from_addr": "anna@client.example",
    "from_name": "Анна Петрова", "to_addrs": ["sales@romashka.example"],
    "subject": "Re: Коммерческое предложение", "sent_date": T1, "received_at": T1,
    "snippet": "Спасибо, а доставка в Казань?",
    "attachments": [{"filename": "plan.pdf", "content_type": "application/pdf", "size": 48213,
                     "key": "mail-3f2a-0", "skipped": None}],
    "problems": []}
EVENT_BODIES.update({
    events.EMAILS_QUEUED: {"email_ids": [OUTGOING_EMAIL["id"]]},
    events.EMAIL_SENT: {"email": OUTGOING_EMAIL},
    events.EMAIL_RECEIVED: {"email": RECEIVED_EMAIL},
    events.EMAIL_BOUNCED: {"email": {**OUTGOING_EMAIL, "status": "bounced", "bounced_at": T1,
                                     "bounce_reason": "5.1.1 smtp; 550 user unknown"}},
})
EMAIL_TEMPLATE = {"name": "offer", "subject": "Предложение для {{ client.name }}",
                  "text_body": "Здравствуйте, {{ client.name }}!", "html_body": None,
                  "created_at": T0, "updated_at": T1}
THREAD = {"thread_id": OUTGOING_EMAIL["thread_id"], "subject": OUTGOING_EMAIL["subject"],
          "last_at": T1, "messages": [{
              "id": OUTGOING_EMAIL["id"], "direction": "out", "from_addr": "sales@romashka.example",
              "to_addrs": ["anna@client.example"], "subject": OUTGOING_EMAIL["subject"],
              "text_body": "Здравствуйте!", "at": T1, "message_id": OUTGOING_EMAIL["message_id"],
              "status": "sent", "last_error": None, "bounce_reason": None, "attachments": [],
              "problems": []}]}
RPC_PAYLOADS.update({
    ("email.send_email", "request"): {
        "contact_id": "c-5f2d1e0a9b", "to": None, "template": "offer", "subject": None,
        "text_body": None, "html_body": None, "variables": {"discount": "10%"},
        "in_reply_to": None, "idempotency_key": "offer-anna-0001"},
    ("email.send_email", "response"): dumped(mail.OutgoingEmailSchema,
                                             {**OUTGOING_EMAIL, "status": "queued", "attempts": 0,
                                              "sent_at": None}),
    ("email.get_email", "response"): dumped(mail.OutgoingEmailSchema, OUTGOING_EMAIL),
    ("email.list_threads", "request"): {"contact_id": "c-5f2d1e0a9b",
                                        "addresses": ["anna@client.example"], "limit": 20},
    ("email.list_threads", "response"): dumped(mail.EmailThreadListSchema, {"items": [THREAD]}),
    ("email.list_templates", "response"): dumped(mail.EmailTemplateListSchema,
                                                 {"items": [EMAIL_TEMPLATE]}),
    ("email.get_template", "response"): dumped(mail.EmailTemplateSchema, EMAIL_TEMPLATE),
    ("email.put_template", "request"): {"subject": EMAIL_TEMPLATE["subject"],
                                        "text_body": EMAIL_TEMPLATE["text_body"],
                                        "html_body": None},
    ("email.put_template", "response"): dumped(mail.EmailTemplateSchema, EMAIL_TEMPLATE),
    ("email.delete_template", "response"): dumped(mail.EmailTemplateListSchema, {"items": []}),
    ("email.sync_mailbox", "response"): {"fetched": 3, "stored": 2, "bounces": 1,
                                         "resynced": False, "searched": True},
    ("email.list_mailboxes", "response"): dumped(mail.MailboxListSchema, {"items": [{
        "name": "sales", "uidvalidity": 1795691784, "last_uid": 50000, "messages": 50000,
        "synced_at": T1, "last_error": None, "resyncs": 0}]}),
})

# -- email campaigns and consent ---------------------------------------------------------------
from crmhub.contracts import campaigns as camp  # noqa: E402 - kept with its examples

CAMPAIGN_ID = "5b1e9d0c7a3f4e2b8d6c0a9e1f3b5d7c"
CONSENT = {"contact_id": "c-5f2d1e0a9b", "channel": "email", "status": "granted", "at": T0,
           "source": "form:contact-us"}
CONSENTS = dumped(camp.ConsentsSchema, {
    "contact_id": "c-5f2d1e0a9b", "consents": [CONSENT],
    "history": [CONSENT, {**CONSENT, "status": "withdrawn", "at": T0 - dt.timedelta(days=30),
                          "source": "unsubscribe-link"}]})
SEGMENT = {"tags_any": ["vip"], "tags_all": [], "pipeline_id": "b2b-sales", "stage_key": "proposal",
           "source_channel": "form", "source_connector": None,
           "last_activity_after": T0 - dt.timedelta(days=90), "last_activity_before": None}
CAMPAIGN = dumped(camp.CampaignSchema, {
    "id": CAMPAIGN_ID, "name": "Весенняя распродажа", "segment": SEGMENT, "status": "sending",
    "template": {"subject": "Скидки для {{ client.name }}", "text": "Здравствуйте!",
                 "html": '<p>Здравствуйте!</p><a href="https://shop.example/sale">Скидки</a>'},
    "rate_per_minute": 600, "created_by": "Admin", "created_at": T0, "started_at": T1,
    "finished_at": None, "counters": {"recipients": 1200, "excluded_no_consent": 310,
                                      "queued": 600, "skipped": 2, "pending": 598}})
MEMBER = {"id": "c-5f2d1e0a9b", "email": "anna@client.example", "name": "Анна Петрова",
          "company": "ООО Ромашка", "manager": "Olga", "tags": ["vip"],
          "custom_fields": {"city": "Казань"}}
TRACKED = {"campaign_id": CAMPAIGN_ID, "contact_id": "c-5f2d1e0a9b"}
EVENT_BODIES.update({
    events.CAMPAIGN_EMAIL_OPENED: TRACKED,
    events.CAMPAIGN_LINK_CLICKED: {**TRACKED, "url": "https://shop.example/sale?utm_campaign=spring"},
    events.CAMPAIGN_UNSUBSCRIBE_REQUESTED: TRACKED,
    events.CONSENT_CHANGED: {"consent": {**CONSENT, "status": "withdrawn",
                                         "source": "unsubscribe-link"},
                             "previous_status": "granted"},
})
RPC_PAYLOADS.update({
    ("contacts.segment", "request"): dumped(camp.ContactSegmentRequestSchema, {
        "filter": SEGMENT, "after_id": None, "limit": 5000}),
    ("contacts.segment", "response"): {"items": [MEMBER], "next_after": "c-5f2d1e0a9b"},
    ("deals.segment_contacts", "request"): {"pipeline_id": "b2b-sales", "stage_key": "proposal",
                                            "after_id": None, "limit": 20000},
    ("deals.segment_contacts", "response"): {"contact_ids": ["c-5f2d1e0a9b"], "next_after": None},
    ("email.set_consent", "request"): {"contact_id": "c-5f2d1e0a9b", "channel": "email",
                                       "status": "granted", "source": "form:contact-us",
                                       "at": CONSENT["at"].isoformat()},
    ("email.set_consent", "response"): CONSENTS,
    ("email.get_consents", "response"): CONSENTS,
    ("email.create_campaign", "request"): {
        "name": CAMPAIGN["name"], "segment": CAMPAIGN["segment"], "template": CAMPAIGN["template"],
        "rate_per_minute": 600, "created_by": "Admin"},
    ("email.create_campaign", "response"): {**CAMPAIGN, "status": "draft", "started_at": None},
    ("email.list_campaigns", "response"): {"items": [CAMPAIGN]},
    ("email.get_campaign", "response"): CAMPAIGN,
    ("email.preview_campaign", "response"): {
        "matching": 1200, "excluded_no_consent": 310, "sample_contact_id": "c-5f2d1e0a9b",
        "sample": {"to": "anna@client.example", "subject": "Скидки для Анна Петрова",
                   "text": "Здравствуйте!\n\n--\nUnsubscribe: https://crm.example/t/u/abc.def\n",
                   "html": '<p>Здравствуйте!</p><a href="https://crm.example/t/c/ghi.jkl">Скидки</a>',
                   "headers": {"List-Unsubscribe": "<https://crm.example/t/u/abc.def>",
                               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}}},
    ("email.send_campaign", "response"): CAMPAIGN,
    ("email.cancel_campaign", "response"): {**CAMPAIGN, "status": "cancelled",
                                            "counters": {**CAMPAIGN["counters"], "pending": 0}},
    ("email.campaign_metrics", "response"): {
        "campaign_id": CAMPAIGN_ID, "status": "sending", "recipients": 1200, "queued": 600,
        "sent": 590, "failed": 3, "bounced": 12, "opened": 231, "open_rate": 0.3997,
        "bounce_rate": 0.0203, "unsubscribed": 4,
        "clicks": [{"url": "https://shop.example/sale", "clicks": 97, "clients": 80}]},
})

from crmhub.contracts import reporting as rep  # noqa: E402 - kept with its examples

MARCH_FILTERS = {"period_from": "2026-03-01", "period_to": "2026-03-31", "manager": "Анна"}
FUNNEL_ROWS = [
    {"key": "11", "stage": "Новая", "reached": 120, "to_next": 0.6, "to_won": 0.15,
     "median_seconds": 5120},
    {"key": "12", "stage": "Квалификация", "reached": 72, "to_next": 0.3333, "to_won": 0.25,
     "median_seconds": 86400}]
PLAN = {"manager": "Анна", "month": "2026-03", "calls": 300, "deals_won": 12,
        "revenue": "1500000.00", "updated_at": T0.isoformat()}
AD_SPEND = {"source": "yandex", "medium": "cpc", "campaign": None, "period_from": "2026-03-01",
            "period_to": "2026-03-31", "amount": "30000.00"}
RPC_PAYLOADS.update({
    ("reporting.list_reports", "response"): {"reports": [
        {"name": "funnel", "title": "Sales funnel", "description": "Deals per stage."}]},
    ("reporting.report", "request"): MARCH_FILTERS,
    ("reporting.report", "response"): dumped(rep.ReportSchema, {
        "report": "funnel", "title": "Sales funnel",
        "filters": rep.ReportFiltersSchema().load(MARCH_FILTERS),
        "columns": [{"key": "stage", "title": "Stage", "kind": "text"},
                    {"key": "reached", "title": "Deals reached", "kind": "int"}],
        "rows": FUNNEL_ROWS,
        "groups": [{"key": "b2b-sales", "title": "B2B", "rows": FUNNEL_ROWS,
                    "highlight": {"row": "12", "group": None, "why": "lowest conversion"}}],
        "chart": {"type": "funnel", "x": "stage", "y": ["reached"]},
        "highlight": {"row": "12", "group": "b2b-sales", "why": "lowest conversion"},
        "summary": {"pipelines": 1, "won": 18}}),
    ("reporting.put_plan", "request"): {"calls": 300, "deals_won": 12, "revenue": "1500000.00"},
    ("reporting.put_plan", "response"): PLAN,
    ("reporting.list_plans", "response"): {"plans": [PLAN]},
    ("reporting.put_ad_spend", "request"): AD_SPEND,
    ("reporting.put_ad_spend", "response"): {**AD_SPEND, "id": "as-1",
                                             "created_at": T0.isoformat()},
    ("reporting.list_ad_spend", "response"): {"entries": [
        {**AD_SPEND, "id": "as-1", "created_at": T0.isoformat()}]},
})


@pytest.fixture
def event_example():
    """``event_example(name)``: a fresh realistic event in wire form (dumped by its schema)."""

    def make(name: str) -> dict:
        spec = events.spec(name)
        return new_event(spec.schema, event_id="evt-0c8e3f1b2a4d", occurred_at=T0,
                         **copy.deepcopy(EVENT_BODIES[name]))

    return make


@pytest.fixture
def rpc_example():
    """``rpc_example(key, part)``: a fresh realistic RPC payload (``part``: request/response)."""

    def make(key: str, part: str) -> dict:
        return copy.deepcopy(RPC_PAYLOADS[key, part])

    return make
