"""A sales head's session with the reports in headless Chromium: the dashboard's funnel chart
with its weakest stage marked, a filter changed, the CSV downloaded, and a task created from
the churn report.

test_reports_ui.py runs this file in a Python process of its own, which imports no eventlet
(see operator_session.py).

    python tests/browser/report_session.py BASE_URL ADMIN_KEY
"""
import csv
import io
import os
import re
import sys

from headless import checked_page
from playwright.sync_api import expect

SCHOOL = "language-school"
WEAKEST = "Trial lesson booked"


def report_session(page, base: str, key: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Reports").click()
    expect(page).to_have_url(f"{base}/reports")

    # The funnel: one chart per pipeline; the school's weakest stage marked in chart and table.
    funnel = page.locator('[data-report="funnel"]')
    expect(funnel.locator('svg[data-chart="funnel"]')).to_have_count(2)
    school = funnel.locator(f'[data-group="{SCHOOL}"]')
    expect(school.locator('svg [data-highlight="true"]')).to_contain_text(WEAKEST)
    expect(school.locator('tr[data-highlight="true"]')).to_contain_text(WEAKEST)
    expect(school.locator("[data-why]")).to_contain_text("lowest conversion")
    expect(school.locator("tr", has_text="Request")).to_contain_text("75.0 %")
    if os.environ.get("REPORT_SCREENSHOT"):  # to look at the dashboard by eye
        page.screenshot(path=os.environ["REPORT_SCREENSHOT"], full_page=True)

    # A filter: only the school's pipeline.
    page.get_by_label("Pipeline").select_option(label="Language school")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(rf"/reports\?.*pipeline_id={SCHOOL}"))
    expect(funnel.locator('svg[data-chart="funnel"]')).to_have_count(1)
    expect(page.get_by_label("Pipeline")).to_have_value(SCHOOL)

    # The CSV of the filtered funnel.
    with page.expect_download() as info:
        funnel.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "funnel.csv", download.suggested_filename
    with open(download.path(), encoding="utf-8-sig") as f:
        lines = list(csv.DictReader(io.StringIO(f.read())))
    assert {line["group"] for line in lines} == {SCHOOL}, lines
    assert {line["stage"]: line["reached"] for line in lines}[WEAKEST] == "3", lines

    # Churn: the client who stopped buying gets a task from the report.
    page.get_by_role("link", name="Reset").click()
    churn = page.locator('[data-report="churn"]')
    row = churn.locator("tr", has_text="Zoe")
    expect(row).to_contain_text("Olga")
    row.get_by_role("button", name="Create task for Zoe").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(base)}/reports\?task_created=\w+$"))
    expect(page.locator("[data-notice]")).to_contain_text("Win back Zoe")
    expect(page.locator("[data-notice]")).to_contain_text("for Olga")


def main(base: str, key: str) -> None:
    with checked_page() as page:
        report_session(page, base.rstrip("/"), key)
    print("report session passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
