"""Personas and fixtures shared by all tests (see careloop/core/testing.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from careloop.accounts.choices import Role
from careloop.accounts.models import Department, User
from careloop.core import testing


def pytest_configure(config: pytest.Config) -> None:
    """Tests hash passwords with a fast hasher: PBKDF2 in every persona made the suite minutes slower."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Hospital:
    cardio: Department
    ortho: Department
    alice: User  # cardiology nurse
    bob: User  # orthopaedics nurse
    carol: User  # supervisor, cardiology
    dave: User  # cardiology doctor
    erin: User  # leader, hospital-wide, read-only
    frank: User  # administrator
    henry: User  # department handler, cardiology


@pytest.fixture
def hospital(db: None) -> Hospital:
    cardio = testing.make_department("CARD", "心内科")
    ortho = testing.make_department("ORTH", "骨科")
    return Hospital(
        cardio=cardio,
        ortho=ortho,
        alice=testing.make_user(
            "alice", role=Role.NURSE, departments=[cardio], display_name="李爱丽"
        ),
        bob=testing.make_user("bob", role=Role.NURSE, departments=[ortho], display_name="王博"),
        carol=testing.make_user(
            "carol", role=Role.SUPERVISOR, departments=[cardio], display_name="陈卡罗"
        ),
        dave=testing.make_user(
            "dave", role=Role.DOCTOR, departments=[cardio], display_name="刘大卫"
        ),
        erin=testing.make_user(
            "erin", role=Role.LEADER, all_departments=True, display_name="赵院长"
        ),
        frank=testing.make_user(
            "frank", role=Role.ADMIN, all_departments=True, display_name="系统管理员"
        ),
        henry=testing.make_user(
            "henry", role=Role.HANDLER, departments=[cardio], display_name="孙亨利"
        ),
    )
