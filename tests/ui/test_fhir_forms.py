"""FHIR questionnaires as generated forms in Chromium (docs/fhir.md): each conformance example
and the PHQ-9, imported with `formloom fhir import-questionnaire`, shows and hides its items as
their enableWhen says while a person answers, and the PHQ-9 total adds up live."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.ui.conftest import LiveServer

TESTS = Path(__file__).resolve().parent.parent
CONFORMANCE = TESTS / "conformance" / "fhir"
APP = "fhir_forms"


def _install(server: LiveServer, folder: Path) -> None:
    definition = {
        "format": "formloom.app/v1",
        "key": APP,
        "version": "1.0.0",
        "label": "FHIR forms",
        "forms": [{"key": "note", "label": "Note", "fields": [{"key": "text", "type": "text"}]}],
    }
    path = folder / "app.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    done = server.cli("app", "import", str(path))
    assert done.returncode == 0, done.stderr
    for file, form in [
        (CONFORMANCE / "MultipleEnableWhen.json", "multi"),
        (CONFORMANCE / "questionnaire-example-3141.json", "cancer"),
        (TESTS / "engines" / "fhir" / "phq9.json", "phq9"),
    ]:
        done = server.cli("fhir", "import-questionnaire", str(file), "--app", APP, "--form", form)
        assert done.returncode == 0, done.stderr


def test_questionnaires_answered_in_the_browser(
    page: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    _install(live_server, tmp_path)
    url = live_server.url

    # MultipleEnableWhen: one display text for "any" answer right, one for "all" right
    page.goto(f"{url}/apps/{APP}/forms/multi/new")
    form = page.get_by_test_id("record-form")
    anyone = form.locator("[data-section=q_9b128844_d321_4748_8666_22c74ff20829]")
    everyone = form.locator("[data-section=eadbd01a_21a1_4586_a231_ee5e984aecda]")
    form.locator("[data-field=ae4bde24_8709_436d_8961_15d04d649d7c]").wait_for()
    assert anyone.is_hidden() and everyone.is_hidden()
    sky = form.locator("[data-field=ae4bde24_8709_436d_8961_15d04d649d7c] label.fl-switch")
    sky.click()
    anyone.wait_for(state="visible")
    assert everyone.is_hidden()
    grass = form.locator("[data-field=c3fd1ee9_1f0d_4136_887c_f22589bbdc68]")
    grass.locator("label.radio-choice", has_text="green").click()
    page.fill("input[name=q_7384620c_276b_46da_cfb0_da857efced0d]", "12")
    everyone.wait_for(state="visible")
    sky.click()  # the sky is no longer blue: not all right, still some
    everyone.wait_for(state="hidden")
    assert anyone.is_visible()
    grass.locator("label.radio-choice", has_text="red").click()
    page.fill("input[name=q_7384620c_276b_46da_cfb0_da857efced0d]", "11")
    anyone.wait_for(state="hidden")

    # 3141: the cardial group appears when comorbidity is answered Yes (a coding)
    page.goto(f"{url}/apps/{APP}/forms/cancer/new")
    form = page.get_by_test_id("record-form")
    cardial = form.locator("[data-section=q_1_1_1]")
    comorbidity = form.locator("[data-field=q_1_1]")
    comorbidity.wait_for()
    assert cardial.is_hidden()
    comorbidity.locator("label.radio-choice", has_text="Yes").click()
    cardial.wait_for(state="visible")
    assert form.locator("[data-field=q_1_1_1_1_1]").is_visible()
    comorbidity.locator("label.radio-choice", has_text=re.compile(r"^No$")).click()
    cardial.wait_for(state="hidden")
    assert form.locator("[data-field=q_1_1_1_1_1]").is_hidden()

    # PHQ-9: the total adds the chosen answers' scores; the last question needs a total > 0
    page.goto(f"{url}/apps/{APP}/forms/phq9/new")
    form = page.get_by_test_id("record-form")
    difficulty = form.locator("[data-field=difficulty]")
    form.locator("[data-field=phq9_1]").wait_for()
    for number in range(1, 10):
        answer = "Not at all"
        form.locator(f"[data-field=phq9_{number}] label.radio-choice", has_text=answer).click()
    total = form.locator("output[name=total]")
    assert total.inner_text() == "0"
    assert difficulty.is_hidden()
    for number in range(1, 10):
        answer = "Nearly every day" if number <= 4 else "Several days"
        form.locator(f"[data-field=phq9_{number}] label.radio-choice", has_text=answer).click()
    page.wait_for_function(
        "document.querySelector('output[name=total]').textContent.trim() === '17'"
    )
    difficulty.wait_for(state="visible")
    difficulty.locator("label.radio-choice", has_text="Very difficult").click()
    page.get_by_test_id("submit").click()
    page.wait_for_url(lambda address: address.rstrip("/").split("/")[-1] not in ("new", "phq9"))
    with live_server.api() as api:
        records = api.get(f"/api/records/{APP}/phq9").json()["items"]
        assert [r["data"]["total"] for r in records] == [17]
        response = api.get(f"/api/records/{APP}/phq9/{records[0]['id']}/fhir").json()
    assert response["resourceType"] == "QuestionnaireResponse"
    assert next(i for i in response["item"] if i["linkId"] == "total")["answer"] == [
        {"valueInteger": 17}
    ]
