"""Every alert screen, for the shared permission test (careloop/core/screens.py)."""

from __future__ import annotations

from careloop.alerts.tests.factories import make_alert, make_rule
from careloop.core.screens import Screen


def _alert_url(h, suffix=""):
    return f"/alerts/{make_alert(h.cardio).pk}/{suffix}"


def _ortho_alert_url(h, suffix=""):
    return f"/alerts/{make_alert(h.ortho).pk}/{suffix}"


SCREENS = [
    Screen("alerts_list", lambda h: "/alerts/", allowed="alice", denied="henry"),
    Screen("alerts_list_leader", lambda h: "/alerts/?view=all", allowed="erin"),
    Screen(
        "alerts_detail",
        _alert_url,
        allowed="alice",
        denied="henry",
        other_department=_ortho_alert_url,
    ),
    Screen("alerts_detail_leader", _alert_url, allowed="erin"),
    Screen(
        "alerts_acknowledge",
        lambda h: _alert_url(h, "acknowledge/"),
        allowed="dave",
        denied="erin",
        other_department=lambda h: _ortho_alert_url(h, "acknowledge/"),
        method="post",
        ok_status=302,
    ),
    Screen(
        "alerts_advise",
        lambda h: _alert_url(h, "advise/"),
        allowed="dave",
        denied="erin",
        other_department=lambda h: _ortho_alert_url(h, "advise/"),
        method="post",
        data={"text": "请到门诊复查", "channel": "call"},
        ok_status=302,
    ),
    Screen(
        "alerts_close",
        lambda h: _alert_url(h, "close/"),
        allowed="dave",
        denied="alice",
        other_department=lambda h: _ortho_alert_url(h, "close/"),
        method="post",
        data={"note": "误报"},
        ok_status=302,
    ),
    Screen("alerts_rules", lambda h: "/alerts/rules/", allowed="dave", denied="alice"),
    Screen(
        "alerts_rules_leader_denied", lambda h: "/alerts/rules/", allowed="frank", denied="erin"
    ),
    Screen("alerts_rule_create", lambda h: "/alerts/rules/new/", allowed="dave", denied="alice"),
    Screen(
        "alerts_rule_edit",
        lambda h: f"/alerts/rules/{make_rule().pk}/",
        allowed="frank",
        denied="erin",
    ),
    Screen(
        "alerts_rule_save_denied_to_leader",
        lambda h: f"/alerts/rules/{make_rule().pk}/",
        allowed="dave",
        denied="erin",
        method="post",
        data={
            "question_key": "temperature",
            "operator": "gt",
            "value": "38",
            "severity": "high",
            "message": "发热",
            "ack_hours": "4",
            "escalation_hours": "0",
            "is_active": "on",
        },
        ok_status=302,
    ),
]
