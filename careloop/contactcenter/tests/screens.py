"""Every contact-center screen, for the shared permission test (careloop/core/screens.py)."""

from __future__ import annotations

from careloop.contactcenter.tests.factories import make_call, make_patient_in, make_recording
from careloop.core.screens import Screen


def _call_url(h, suffix=""):
    return f"/cc/calls/{make_call(h.alice, make_patient_in(h.cardio)).pk}/{suffix}"


def _ortho_call_url(h, suffix=""):
    return f"/cc/calls/{make_call(h.bob, make_patient_in(h.ortho)).pk}/{suffix}"


def _recording_url(h, department="cardio"):
    nurse = h.alice if department == "cardio" else h.bob
    call = make_call(nurse, make_patient_in(getattr(h, department)))
    return f"/cc/recordings/{make_recording(call).pk}/"


SCREENS = [
    Screen(
        "cc_call_detail",
        _call_url,
        allowed="alice",
        denied="erin",
        other_department=_ortho_call_url,
    ),
    Screen(
        "cc_call_hangup",
        lambda h: _call_url(h, "hangup/"),
        allowed="alice",
        denied="erin",
        other_department=lambda h: _ortho_call_url(h, "hangup/"),
        method="post",
        ok_status=302,
    ),
    # alice has no phone set up: the call is refused with a message (409), not placed
    Screen(
        "cc_click_to_call",
        lambda h: f"/cc/call/{make_patient_in(h.cardio).pk}/",
        allowed="alice",
        denied="erin",
        other_department=lambda h: f"/cc/call/{make_patient_in(h.ortho).pk}/",
        method="post",
        ok_status=409,
    ),
    Screen(
        "cc_recording",
        _recording_url,
        allowed="alice",
        other_department=lambda h: _recording_url(h, "ortho"),
    ),
    Screen(
        "cc_call_patient_page",
        lambda h: f"/cc/call/{make_patient_in(h.cardio).pk}/",
        allowed="alice",
        denied="erin",
        other_department=lambda h: f"/cc/call/{make_patient_in(h.ortho).pk}/",
    ),
    Screen("cc_my_phone", lambda h: "/cc/phone/", allowed="alice", denied="erin"),
    Screen(
        "cc_call_hangup_rating",
        lambda h: _call_url(h, "hangup/rating/"),
        allowed="alice",
        denied="erin",
        other_department=lambda h: _ortho_call_url(h, "hangup/rating/"),
        method="post",
        ok_status=302,
    ),
    # supervisors, leaders and administrators; a department she cannot see is a 404
    Screen(
        "cc_ratings",
        lambda h: "/cc/ratings/",
        allowed="carol",
        denied="alice",
        other_department=lambda h: f"/cc/ratings/?department={h.ortho.pk}",
    ),
    Screen(
        "cc_ratings_export",
        lambda h: "/cc/ratings/export/",
        allowed="carol",
        denied="alice",
        other_department=lambda h: f"/cc/ratings/export/?department={h.ortho.pk}",
    ),
]
