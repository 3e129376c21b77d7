"""What each role may do. Checked on the server by ``RoleBackend`` through ``user.has_perm``.

Which records a user may see is a separate question, answered by each app's ``queries.visible_to``.
"""

from __future__ import annotations

from careloop.accounts.choices import Role

_READ = {
    "patients.view_patient",
    "patients.view_encounter",
    "followup.view_plan",
    "followup.view_task",
    "followup.view_figures",
    "surveys.view_questionnaire",
    "surveys.view_response",
    "alerts.view_alert",
    "outreach.view_contactpolicy",
    "outreach.view_reminder",
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.NURSE: frozenset(
        _READ
        | {
            "patients.change_patient",
            "patients.add_patient",
            "patients.reveal_patient",
            "patients.export_patients",
            "followup.work_task",
            "followup.add_enrollment",
            "surveys.add_response",
            "campaigns.view_campaign",
            "outreach.add_reminder",
            "outreach.change_reminder",
        }
    ),
    Role.SUPERVISOR: frozenset(
        _READ
        | {
            "patients.change_patient",
            "patients.add_patient",
            "patients.reveal_patient",
            "patients.import_patients",
            "patients.export_patients",
            "followup.work_task",
            "followup.assign_task",
            "followup.add_enrollment",
            "followup.change_enrollment",
            "followup.view_team",
            "followup.change_team",
            "surveys.add_response",
            "audit.view_auditevent",
            "accounts.view_user",
            "patients.view_phoneblock",
            "patients.add_phoneblock",
            "patients.delete_phoneblock",
            "campaigns.view_campaign",
            "campaigns.run_campaign",
            "outreach.change_contactpolicy",
            "outreach.add_reminder",
            "outreach.change_reminder",
        }
    ),
    Role.DOCTOR: frozenset(
        _READ
        | {
            "patients.reveal_patient",
            "followup.add_plan",
            "followup.change_plan",
            "followup.add_enrollment",
            "followup.change_enrollment",
            "surveys.add_questionnaire",
            "surveys.change_questionnaire",
            "alerts.advise_alert",
            "alerts.view_alertrule",
            "alerts.add_alertrule",
            "alerts.change_alertrule",
        }
    ),
    Role.HANDLER: frozenset({"patients.view_patient", "patients.view_encounter"}),
    Role.LEADER: frozenset(_READ | {"campaigns.view_campaign"}),
    Role.ADMIN: frozenset(),  # administrators get every permission, see RoleBackend
}


def role_has_perm(role: str, perm: str) -> bool:
    if role == Role.ADMIN:
        return True
    return perm in ROLE_PERMISSIONS.get(role, frozenset())
