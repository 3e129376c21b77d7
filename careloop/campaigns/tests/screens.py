"""Every campaign screen, for the shared permission test (careloop/core/screens.py)."""

from __future__ import annotations

from careloop.campaigns.choices import CampaignKind, CampaignState, TargetState
from careloop.campaigns.tests.factories import make_campaign, make_target
from careloop.core.screens import Screen


def _campaign(h, department=None, **overrides):
    return make_campaign(department or h.cardio, **overrides)


def _url(suffix=""):
    return lambda h: f"/campaigns/{_campaign(h).pk}/{suffix}"


def _ortho_url(suffix=""):
    return lambda h: f"/campaigns/{_campaign(h, h.ortho, name='骨科通知').pk}/{suffix}"


def _preview_url(h, department=None):
    campaign = _campaign(
        h, department, kind=CampaignKind.PREVIEW, state=CampaignState.RUNNING, name="预览外呼"
    )
    make_target(campaign)
    return f"/campaigns/{campaign.pk}/preview/"


def _skip_url(h, department=None):
    campaign = _campaign(
        h, department, kind=CampaignKind.PREVIEW, state=CampaignState.RUNNING, name="预览外呼"
    )
    target = make_target(campaign, state=TargetState.IN_PROGRESS, claimed_by=h.alice)
    return f"/campaigns/{campaign.pk}/targets/{target.pk}/skip/"


SCREENS = [
    Screen("campaign_list", lambda h: "/campaigns/", allowed="alice", denied="henry"),
    Screen("campaign_create", lambda h: "/campaigns/new/", allowed="carol", denied="alice"),
    Screen("campaign_detail", _url(), allowed="erin", denied="henry"),
    Screen(
        "campaign_detail_nurse",
        _url(),
        allowed="alice",
        other_department=_ortho_url(),
    ),
    Screen(
        "campaign_edit",
        _url("edit/"),
        allowed="carol",
        denied="erin",
        other_department=_ortho_url("edit/"),
    ),
    Screen(
        "campaign_build",
        _url("list/"),
        allowed="carol",
        denied="alice",
        other_department=_ortho_url("list/"),
    ),
    Screen(
        "campaign_build_count",
        _url("list/?source=patients&p-q=zs"),
        allowed="carol",
        denied="erin",
    ),
    Screen(
        "campaign_clear",
        _url("list/clear/"),
        allowed="carol",
        denied="alice",
        other_department=_ortho_url("list/clear/"),
        method="post",
        ok_status=302,
    ),
    Screen(
        "campaign_pause",
        _url("state/pause/"),
        allowed="carol",
        denied="alice",
        other_department=_ortho_url("state/pause/"),
        method="post",
        ok_status=302,
    ),
    Screen(
        "campaign_preview",
        _preview_url,
        allowed="alice",
        denied="erin",
        other_department=lambda h: _preview_url(h, h.ortho),
    ),
    Screen(
        "campaign_skip",
        _skip_url,
        allowed="alice",
        denied="erin",
        other_department=lambda h: _skip_url(h, h.ortho),
        method="post",
        ok_status=302,
    ),
    Screen(
        "campaign_report",
        _url("report/"),
        allowed="carol",
        denied="henry",
        other_department=_ortho_url("report/"),
    ),
    Screen("campaign_report_leader", _url("report/"), allowed="erin"),
    Screen(
        "campaign_export",
        _url("report/export/"),
        allowed="alice",
        denied="erin",
        other_department=_ortho_url("report/export/"),
    ),
]
