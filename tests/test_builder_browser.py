"""The cohort builder in a real browser (Debian's chromium, headless, through Selenium).

A person who has never seen the YAML builds "one SEG with both the left and the right
ventricle AND an ECG with LBBB within 90 days before the TAVI" by clicking; the counts read off
the page must equal ``srcohort cohort count`` of the YAML the page shows and the demo's ground
truth. A YAML file loaded into the page must come back as the same definition. Screenshots go
to ``$SRCOHORT_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from srcohort.cohort.definition import load_cohort
from srcohort.cohort.library import saved_cohorts
from tests.browser import chromium
from tests.builder_truth import saved_truth, truth_per_site

pytestmark = pytest.mark.opensearch

ARTIFACTS = Path(os.environ.get("SRCOHORT_TEST_ARTIFACTS",
                                Path(__file__).resolve().parent.parent / "test-artifacts"))
LEFT_VENTRICLE, RIGHT_VENTRICLE, LBBB = "SCT:87878005", "SCT:53085002", "SCT:63467002"


class Page:
    """The builder page, as a person uses it: by what is on the screen."""

    def __init__(self, driver, url: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait
        self.driver = driver
        self.wait = WebDriverWait(driver, 60)
        driver.get(url)
        self.wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "yes")

    def find(self, css: str, within=None):
        from selenium.webdriver.common.by import By
        return (within or self.driver).find_element(By.CSS_SELECTOR, css)

    def all(self, css: str, within=None):
        from selenium.webdriver.common.by import By
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def choose(self, css: str, value: str, within=None) -> None:
        from selenium.webdriver.support.ui import Select
        Select(self.find(css, within)).select_by_value(value)

    def card(self, i: int):
        return self.all("#tree .card")[i]

    def type_into(self, css: str, text: str, within=None) -> None:
        from selenium.webdriver.common.keys import Keys
        field = self.find(css, within)
        field.send_keys(Keys.CONTROL, "a")         # replace the text: one change event
        field.send_keys(text, Keys.TAB)

    def counted(self) -> str:
        """Wait until the page shows counts for what it holds now; its definition's digest."""
        self.wait.until(lambda d: self.find("#status").get_attribute("data-state") != "counting")
        self.wait.until(lambda d: self.find("#status").get_attribute("data-state") == "ok")
        self.wait.until(lambda d: d.execute_script(
            "return document.getElementById('yaml').value.length > 0"))
        return self.find("#status").get_attribute("data-digest")

    def counts(self) -> dict[str, int]:
        rows = self.all("[data-role=site-count]")
        return {row.get_attribute("data-site"): int(self.find("[data-role=site-total]", row).text)
                for row in rows}

    def funnel(self) -> list[int]:
        return [int(self.find("[data-role=step-total]", row).text)
                for row in self.all("[data-role=step]")]

    def yaml(self) -> str:
        return self.find("#yaml").get_attribute("value")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.driver.save_screenshot(str(path))
        return path


def cli_count(yaml_text: str, prefixes: dict[str, str], url: str, tmp_path: Path) -> dict:
    """``srcohort cohort count FILE --json`` at every site, as a site would run it."""
    path = tmp_path / "from-the-page.yaml"
    path.write_text(yaml_text, "utf-8")
    counts = {}
    for site, prefix in prefixes.items():
        done = subprocess.run([sys.executable, "-m", "srcohort", "cohort", "count", str(path),
                               "--json", "--url", url, "--prefix", prefix],
                              check=True, capture_output=True, text=True)
        counts[site] = json.loads(done.stdout)["total"]
    return counts


def test_build_the_multimodal_cohort_by_clicking(builder_server, builder_consortium,
                                                 opensearch_url: str, tmp_path: Path) -> None:
    root, prefixes = builder_consortium
    with chromium() as driver:
        page = Page(driver, builder_server.url)
        # One SEG that holds both ventricles: one card, two segment conditions.
        page.find("#tree > .group > .add [data-role=add-annotation]").click()
        seg = page.card(0)
        page.choose("[data-role=kind]", "SEG", seg)
        page.choose("[data-role=add-condition]", "segments", page.card(0))
        page.choose("[data-role=segment-type]", LEFT_VENTRICLE, page.card(0))
        page.choose("[data-role=add-condition]", "segments", page.card(0))
        page.choose("[data-role=segment] ~ [data-role=segment] [data-role=segment-type]",
                    RIGHT_VENTRICLE, page.card(0))
        page.counted()
        # An ECG report whose finding is LBBB, within 90 days before the TAVI.
        page.find("#tree > .group > .add [data-role=add-annotation]").click()
        page.choose("[data-role=template]", "3700", page.card(1))
        page.choose("[data-role=add-condition]", "field:3700:findings", page.card(1))
        page.choose("[data-role=field] [data-role=add-value]", LBBB, page.card(1))
        page.choose("[data-role=add-condition]", "within", page.card(1))
        page.type_into("[data-role=days-from]", "-90", page.card(1))
        page.type_into("[data-role=days-to]", "0", page.card(1))
        page.counted()
        shown = page.counts()
        funnel = page.funnel()
        text = page.yaml()
        card_text = page.card(1).text
        page.screenshot("builder-clicked.png")

    truth = truth_per_site(root / "consortium")
    assert shown == truth and sum(shown.values()) > 0
    assert shown == cli_count(text, prefixes, opensearch_url, tmp_path)
    assert funnel[0] == 45 and funnel[-1] == sum(truth.values()) and len(funnel) == 3
    assert "Left bundle branch block" in card_text            # meanings shown ...
    produced = yaml.safe_load(text)["patients"]                # ... codes kept
    assert produced == {"all": [
        {"annotation": {"kind": "SEG", "segments": [{"type": LEFT_VENTRICLE},
                                                     {"type": RIGHT_VENTRICLE}]}},
        {"annotation": {"template": "3700", "fields": {"findings": LBBB},
                        "within": {"event": "tavi", "days": [-90, 0]}}}]}


def test_a_loaded_yaml_is_rebuilt_as_the_same_definition(builder_server, builder_consortium,
                                                         opensearch_url: str,
                                                         tmp_path: Path) -> None:
    root, prefixes = builder_consortium
    name = "tavi-lbbb-ecg-calcification"
    original = load_cohort(saved_cohorts()[name])
    upload = tmp_path / f"{name}.yaml"
    upload.write_text(saved_cohorts()[name], "utf-8")
    with chromium() as driver:
        page = Page(driver, builder_server.url)
        page.find("[data-role=load-file]").send_keys(str(upload))
        digest = page.counted()
        cards = [card.get_attribute("data-kind") for card in page.all("#tree .card")]
        summaries = [s.text for s in page.all("#tree .card .summary")]
        shown = page.counts()
        text = page.yaml()
        page.screenshot("builder-loaded.png")
        # A bar of a distribution panel adds its condition as one more criterion.
        bar = page.find("[data-panel='field:3802:diabetes'] .mark-rect path")
        before = len(page.all("#tree .card"))
        bar.click()
        page.wait.until(lambda d: len(page.all("#tree .card")) == before + 1)
        page.counted()
        added = yaml.safe_load(page.yaml())["patients"]["all"][-1]
        narrowed = page.counts()

    assert digest == original.digest                           # the same definition, exactly
    assert load_cohort(text).digest == original.digest
    assert cards == ["series", "annotation", "annotation", "annotation"]
    assert "Left bundle branch block" in summaries[2] and "Calcification" in summaries[1]
    assert shown == saved_truth(root / "consortium", name)
    assert shown == cli_count(text, prefixes, opensearch_url, tmp_path)
    assert added["annotation"]["template"] == "3802" and "diabetes" in added["annotation"]["fields"]
    assert all(narrowed[site] <= shown[site] for site in shown)


def test_saving_and_the_patient_list_leave_no_patient_data_in_the_browser(
        builder_server, builder_consortium) -> None:
    name = "tavi-self-expanding"
    with chromium() as driver:
        page = Page(driver, builder_server.url)
        page.choose("[data-role=saved]", name)
        page.find("[data-role=open]").click()
        page.counted()
        page.type_into("[data-role=name]", "my-self-expanding")
        page.counted()
        page.find("[data-role=save]").click()
        page.wait.until(lambda d: "saved" in page.find("[data-role=version]").text)
        version = page.find("[data-role=version]").text
        page.choose("[data-role=saved]", "my-self-expanding")
        page.find("[data-role=recount]").click()
        page.wait.until(lambda d: "re-count" in page.find("[data-role=messages]").text)
        recount = page.find("[data-role=messages]").text
        page.find("[data-role=show-patients]").click()
        page.wait.until(lambda d: page.all("[data-role=patient]"))
        ids = {row.find_elements("css selector", "td")[1].text
               for row in page.all("[data-role=patient]")}
        page.screenshot("builder-patients.png")
        storage = driver.execute_script(
            "return [localStorage.length, sessionStorage.length, document.cookie,"
            " performance.getEntriesByType('resource').map(e => e.name),"
            " location.href, history.length]")
        page.find("[data-role=hide-patients]").click()
        assert not page.all("[data-role=patient]")
    digest = load_cohort({**yaml.safe_load(saved_cohorts()[name]),
                          "name": "my-self-expanding"}).digest
    assert f"version {digest[:12]}" in version
    assert "the indices hold the same documents as when it was counted" in recount
    assert ids and len(ids) == sum(saved_truth(builder_consortium[0] / "consortium",
                                               name).values())
    local, session, cookie, urls, href, _ = storage
    assert (local, session, cookie) == (0, 0, "")
    assert href == builder_server.url
    assert not [u for u in urls if any(pid in u for pid in ids)]
    assert all(u.split("?")[0] == u for u in urls)            # no query strings at all
