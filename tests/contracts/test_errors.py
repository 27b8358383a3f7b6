"""Errors cross RPC as their own types, with their message and details intact: what the
gateway turns into the JSON body an API client reads."""
import pytest
from nameko.exceptions import deserialize, serialize

from crmhub.contracts.errors import InvalidInput, NotFound, PbxRefused, PbxUnavailable


@pytest.mark.parametrize("error", [
    NotFound("no call 'k1'"),
    PbxUnavailable("Mango Office is not reachable: cannot connect to app.mango-office.ru"),
    PbxRefused("Mango refused the call: 3102 wrong parameter"),
    InvalidInput("number: 'sip:x' is not a phone number", {"number": ["not a phone number"]}),
])
def test_an_error_survives_the_trip_across_rpc(error):
    received = deserialize(serialize(error))
    assert type(received) is type(error)
    assert received.to_json() == error.to_json()
    assert (received.status, received.message, received.details) == (
        error.status, error.message, error.details)
