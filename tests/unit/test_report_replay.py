"""The replay loader gives the very dicts the contracts' ``load`` gives."""
import importlib.util
from pathlib import Path

from crmhub.services.reporting.journal import load_event
from crmhub.services.reporting.replay import load_journaled


def _histories():
    integration = Path(__file__).parent.parent / "integration"
    events = []
    for name in sorted(integration.glob("test_report_*.py")):
        spec = importlib.util.spec_from_file_location(f"history_{name.stem}", name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "history"):
            events += module.history()
    return events


def test_fast_loader_matches_contract_load():
    events = _histories()
    assert len({t for t, _ in events}) >= 5
    for event_type, payload in events:
        assert load_journaled(event_type, payload) == load_event(event_type, payload), event_type
