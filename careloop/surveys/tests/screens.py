"""The questionnaire screens, for the shared permission test (careloop/core/screens.py)."""

from careloop.core.screens import Screen
from careloop.core.testing import make_encounter, make_patient
from careloop.surveys.tests.factories import latest_version, make_questionnaire, make_response


def _questionnaire_url(suffix: str, department: str = "cardio"):
    def url(h) -> str:
        questionnaire = make_questionnaire(department=getattr(h, department))
        return f"/surveys/{questionnaire.pk}/{suffix}"

    return url


def _response_url(department: str):
    def url(h) -> str:
        patient = make_patient()
        make_encounter(patient, getattr(h, department))
        response = make_response(latest_version(make_questionnaire()), patient)
        return f"/surveys/responses/{response.pk}/"

    return url


SCREENS = [
    Screen("surveys_list", lambda h: "/surveys/", allowed="alice", denied="henry"),
    Screen("surveys_create", lambda h: "/surveys/new/", allowed="dave", denied="alice"),
    Screen("surveys_create_leader", lambda h: "/surveys/new/", allowed="frank", denied="erin"),
    Screen("surveys_detail", _questionnaire_url(""), allowed="alice", denied="henry"),
    Screen(
        "surveys_edit",
        _questionnaire_url("edit/"),
        allowed="dave",
        denied="alice",
        other_department=_questionnaire_url("edit/", "ortho"),
    ),
    Screen("surveys_edit_leader", _questionnaire_url("edit/"), allowed="frank", denied="erin"),
    Screen(
        "surveys_archive",
        _questionnaire_url("archive/"),
        allowed="dave",
        denied="erin",
        other_department=_questionnaire_url("archive/", "ortho"),
        method="post",
        ok_status=302,
    ),
    Screen("surveys_preview", _questionnaire_url("preview/"), allowed="alice", denied="henry"),
    Screen(
        "surveys_preview_check",
        _questionnaire_url("preview/"),
        allowed="erin",
        denied="henry",
        method="post",
        data={"q_chest_pain": "no", "q_temperature": "36.5"},
    ),
    Screen(
        "surveys_response",
        _response_url("cardio"),
        allowed="alice",
        denied="henry",
        other_department=_response_url("ortho"),
    ),
]
