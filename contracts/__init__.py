"""The contracts of crmhub: every event and RPC payload as a marshmallow schema.

This is the only code that services and connector plugins share. Wire rule: dump with the
schema before sending, load with it on receipt.
"""
