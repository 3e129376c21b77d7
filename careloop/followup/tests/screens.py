"""Every follow-up screen, for the shared permission test (careloop/core/screens.py)."""

from __future__ import annotations

from careloop.core import testing
from careloop.core.screens import Screen
from careloop.followup.choices import NotificationKind
from careloop.followup.models import Notification
from careloop.followup.tests.factories import make_plan, make_task, make_team


def _task(h, department=None, assignee=None):
    return make_task(department or h.cardio, assignee=assignee)


def _task_url(h):
    return f"/followup/tasks/{_task(h).pk}/"


def _ortho_task_url(h):
    return f"/followup/tasks/{_task(h, h.ortho).pk}/"


def _plan_url(h, suffix=""):
    return f"/followup/plans/{make_plan(h.cardio).pk}/{suffix}"


def _ortho_plan_url(h, suffix=""):
    return f"/followup/plans/{make_plan(h.ortho, name='骨科随访').pk}/{suffix}"


def _team_url(h):
    return f"/followup/teams/{make_team(h.cardio).pk}/edit/"


def _ortho_team_url(h):
    return f"/followup/teams/{make_team(h.ortho, name='骨科组').pk}/edit/"


def _cardio_patient(h):
    return testing.make_encounter(testing.make_patient(), h.cardio).patient


def _ortho_patient(h):
    return testing.make_encounter(testing.make_patient(), h.ortho).patient


def _withdraw_url(h, department=None):
    task = _task(h, department)
    return f"/followup/enrollments/{task.enrollment_id}/withdraw/"


def _notification_url(h, user=None):
    task = _task(h)
    notice = Notification.objects.create(
        user=user or h.alice, kind=NotificationKind.OVERDUE, task=task, text="overdue"
    )
    return f"/followup/notifications/{notice.pk}/read/"


SCREENS = [
    Screen("followup_workspace", lambda h: "/followup/", allowed="alice", denied="henry"),
    Screen("followup_task_list", lambda h: "/followup/tasks/", allowed="alice", denied="henry"),
    Screen(
        "followup_task_failures",
        lambda h: "/followup/tasks/?status=failures",
        allowed="erin",
        denied="henry",
    ),
    Screen(
        "followup_task_export", lambda h: "/followup/tasks/export/", allowed="alice", denied="erin"
    ),
    Screen(
        "followup_task_detail",
        _task_url,
        allowed="alice",
        denied="henry",
        other_department=_ortho_task_url,
    ),
    Screen("followup_task_detail_leader", _task_url, allowed="erin"),
    Screen(
        "followup_task_outcome",
        _task_url,
        allowed="alice",
        denied="erin",
        other_department=_ortho_task_url,
        method="post",
        data={"outcome": "no_answer"},
        ok_status=302,
    ),
    Screen(
        "followup_task_claim",
        lambda h: f"{_task_url(h)}claim/",
        allowed="alice",
        denied="erin",
        other_department=lambda h: f"{_ortho_task_url(h)}claim/",
        method="post",
        ok_status=302,
    ),
    Screen(
        "followup_task_assign",
        lambda h: f"{_task_url(h)}assign/",
        allowed="carol",
        denied="alice",
        other_department=lambda h: f"{_ortho_task_url(h)}assign/",
        method="post",
        data={"assignee": ""},
        ok_status=302,
    ),
    Screen(
        "followup_notification_read",
        _notification_url,
        allowed="alice",
        denied="henry",
        other_department=lambda h: _notification_url(h, user=h.carol),
        method="post",
        ok_status=302,
    ),
    Screen(
        "followup_notifications_read_all",
        lambda h: "/followup/notifications/read/",
        allowed="alice",
        denied="henry",
        method="post",
        ok_status=302,
    ),
    Screen("followup_plan_list", lambda h: "/followup/plans/", allowed="alice", denied="henry"),
    Screen(
        "followup_plan_detail",
        _plan_url,
        allowed="alice",
        denied="henry",
        other_department=_ortho_plan_url,
    ),
    Screen(
        "followup_plan_create", lambda h: "/followup/plans/new/", allowed="dave", denied="alice"
    ),
    Screen(
        "followup_plan_edit",
        lambda h: _plan_url(h, "edit/"),
        allowed="dave",
        denied="erin",
        other_department=lambda h: _ortho_plan_url(h, "edit/"),
    ),
    Screen("followup_team_list", lambda h: "/followup/teams/", allowed="carol", denied="alice"),
    Screen(
        "followup_team_create", lambda h: "/followup/teams/new/", allowed="carol", denied="erin"
    ),
    Screen(
        "followup_team_edit",
        _team_url,
        allowed="carol",
        denied="alice",
        other_department=_ortho_team_url,
    ),
    Screen(
        "followup_enrol",
        lambda h: f"/followup/enrol/{_cardio_patient(h).pk}/",
        allowed="alice",
        denied="erin",
        other_department=lambda h: f"/followup/enrol/{_ortho_patient(h).pk}/",
    ),
    Screen(
        "followup_enrollment_withdraw",
        _withdraw_url,
        allowed="carol",
        denied="alice",
        other_department=lambda h: _withdraw_url(h, h.ortho),
        method="post",
        data={"reason": "转院"},
        ok_status=302,
    ),
    Screen("followup_figures", lambda h: "/followup/figures/", allowed="erin", denied="henry"),
    Screen(
        "followup_figures_filtered",
        lambda h: "/followup/figures/?date_from=2026-01-01&date_to=2026-03-31",
        allowed="carol",
    ),
    Screen(
        "followup_figures_export",
        lambda h: "/followup/figures/export/",
        allowed="erin",
        denied="henry",
    ),
]
