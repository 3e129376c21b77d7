from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from careloop.surveys import services
from careloop.surveys.tests.factories import basic_definition, make_questionnaire

from .factories import api_client


def _ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def test_list_shows_every_current_questionnaire_with_its_version(hospital):
    cardio = make_questionnaire(department=hospital.cardio, title="A 心内科术后")
    ortho = make_questionnaire(department=hospital.ortho, title="B 骨科术后")
    everyone = make_questionnaire(title="C 出院满意度")
    services.archive(make_questionnaire(title="D 旧问卷"), acting_user=None)

    response = api_client(hospital.alice).get("/api/v1/questionnaires/")

    assert response.status_code == 200
    assert _ids(response) == [cardio.pk, ortho.pk, everyone.pk]
    row = response.json()["results"][0]
    assert row["department"] == hospital.cardio.pk
    assert row["current_version"]["number"] == 1
    assert "definition" not in row["current_version"]


def test_archived_questionnaires_on_request(hospital):
    old = services.archive(make_questionnaire(), acting_user=None)

    response = api_client(hospital.alice).get("/api/v1/questionnaires/", {"archived": "true"})

    assert _ids(response) == [old.pk]


def test_detail_has_the_latest_published_definition_not_the_draft(hospital):
    questionnaire = make_questionnaire(department=hospital.cardio)
    shorter = {"questions": basic_definition()["questions"][:1]}
    v2 = services.save_and_publish(questionnaire, definition=shorter, acting_user=hospital.dave)
    services.save_draft(questionnaire, definition=basic_definition(), acting_user=hospital.dave)

    response = api_client(hospital.alice).get(f"/api/v1/questionnaires/{questionnaire.pk}/")

    assert response.status_code == 200
    current = response.json()["current_version"]
    assert current["id"] == v2.pk
    assert current["number"] == 2
    assert [q["key"] for q in current["definition"]["questions"]] == ["chest_pain"]


def test_unpublished_questionnaire_has_no_current_version(hospital):
    questionnaire = make_questionnaire(published=False)

    response = api_client(hospital.alice).get(f"/api/v1/questionnaires/{questionnaire.pk}/")

    assert response.json()["current_version"] is None


def test_versions_newest_first_with_drafts_marked(hospital):
    questionnaire = make_questionnaire()
    services.start_draft(questionnaire, acting_user=hospital.dave)

    response = api_client(hospital.alice).get(
        f"/api/v1/questionnaires/{questionnaire.pk}/versions/"
    )

    assert response.status_code == 200
    versions = response.json()
    assert [v["number"] for v in versions] == [2, 1]
    assert versions[0]["published_at"] is None
    assert versions[1]["published_at"] is not None
    assert [q["key"] for q in versions[1]["definition"]["questions"]] == [
        "chest_pain",
        "pain_level",
        "temperature",
        "medication",
    ]


def test_unknown_questionnaire_is_404(hospital):
    client = api_client(hospital.alice)

    assert client.get("/api/v1/questionnaires/999999/").status_code == 404
    assert client.get("/api/v1/questionnaires/999999/versions/").status_code == 404


def test_list_queries_do_not_grow_with_rows(hospital):
    client = api_client(hospital.alice)
    make_questionnaire()

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            client.get("/api/v1/questionnaires/")
        return len(queries)

    few = count()
    for _ in range(8):
        make_questionnaire()

    assert count() == few
