"""The replay loader gives the very dicts the contracts' ``load`` gives."""
import importlib.util
from pathlib import Path

import reporting_scripts

from crmhub.services.reporting.journal import load_event
from crmhub.services.reporting.replay import load_journaled


def _histories():
    integration = Path(__file__).parent.parent / "integration"
    # The scripted histories of the sources, calls, campaigns and churn tests (contacts,
    # merges, calls, emails), then those the funnel and managers test modules define.
    events = [e for script in (reporting_scripts.sources_history, reporting_scripts.calls_history,
                               reporting_scripts.campaigns_history,
                               reporting_scripts.churn_history) for e in script()]
    for name in sorted(integration.glob("test_report_*.py")):
        spec = importlib.util.spec_from_file_location(f"history_{name.stem}", name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "history"):
            events += module.history()
    return events


def test_fast_loader_matches_contract_load():
    events = _histories()
    assert len({t for t, _ in events}) >= 15
    for event_type, payload in events:
        assert load_journaled(event_type, payload) == load_event(event_type, payload), event_type
