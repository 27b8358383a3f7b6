"""Fixtures of the integration tests."""
import pytest
from reporting_history import ReportingDb


@pytest.fixture
def reporting(migrated_database):
    """The reporting service's database, migrated afresh on each backend in turn."""
    db = ReportingDb(migrated_database("reporting"))
    yield db
    db.dispose()
