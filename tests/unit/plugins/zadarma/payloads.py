"""Field sets of Zadarma notifications shared by the tests (as the official SDK names them)."""

SECRET = "test-secret"
CALL = {"call_start": "2024-05-14 10:30:05", "pbx_call_id": "in_abc",
        "caller_id": "79161234567", "called_did": "74951234567"}
