"""`crmhub reports rebuild` as an operator runs it: the projections replayed side by side in
worker processes on PostgreSQL (one process on SQLite), with the live numbers back."""
import subprocess
import sys

import pytest
import sqlalchemy as sa
import yaml
from funnel_history import history as deal_history

from crmhub.services.reporting import parallel, projections
from crmhub.services.reporting.parallel import ReplayFailed

# The funnel is replayed by one worker, managers and sources by the other.
REPORTS = ["funnel", "managers", "sources"]


def reports_of(reporting):
    return [reporting.report(name) for name in REPORTS]


def test_the_cli_rebuild_gives_the_live_numbers(reporting, tmp_path):
    journaled = reporting.feed(deal_history())
    live = reports_of(reporting)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(reporting.config))
    postgres = reporting.engine.dialect.name == "postgresql"
    done = subprocess.run([sys.executable, "-m", "crmhub.cli", "reports", "rebuild", "--config",
                           str(config_file), "--workers", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"rebuilt: {journaled} events replayed" in done.stdout
    assert f"by {2 if postgres else 1} process(es)" in done.stdout
    assert reports_of(reporting) == live
    if postgres:  # the rebuilt tables are planned by their new contents, not the old ones
        with reporting.engine.connect() as conn:
            unanalyzed = conn.execute(sa.text(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'reporting' "
                "AND relname = ANY(:names) AND last_analyze IS NULL"),
                {"names": [t.name for t in projections.projection_tables()]}).scalars().all()
        assert unanalyzed == []


def test_projections_split_into_groups_of_their_own():
    groups = projections.replay_groups(2)
    assert len(groups) == 2
    names = [projections.module_name(m) for group in groups for m in group]
    assert sorted(names) == sorted(projections.module_name(m) for m in projections.PROJECTIONS)
    assert ["funnel"] in [[projections.module_name(m) for m in g] for g in groups]
    assert len(projections.replay_groups(1)) == 1


def test_a_worker_that_fails_fails_the_rebuild(reporting):
    if reporting.engine.dialect.name != "postgresql":
        pytest.skip("side-by-side workers are for PostgreSQL")
    missing = reporting.engine.url.set(database="crmhub_no_such_database")
    with pytest.raises(ReplayFailed, match=r"replay of (funnel|sources) failed \(exit status 1\)"):
        parallel.replay(missing.render_as_string(hide_password=False), [["funnel"], ["sources"]], 100)
