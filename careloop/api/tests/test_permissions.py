"""The permission matrix of every endpoint listed in endpoints.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import get_resolver

from .endpoints import ENDPOINTS, Endpoint, cardio_patient
from .factories import api_client


def _call(client, endpoint: Endpoint, hospital, url: str | None = None):
    data = endpoint.data(hospital) if endpoint.data else None
    return getattr(client, endpoint.method)(url or endpoint.url(hospital), data, format="json")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_anonymous_is_401(hospital, endpoint):
    response = _call(api_client(), endpoint, hospital)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.denied], ids=lambda e: e.name)
def test_role_without_the_permission_gets_403(hospital, endpoint):
    client = api_client(getattr(hospital, endpoint.denied))

    assert _call(client, endpoint, hospital).status_code == 403


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.other_department], ids=lambda e: e.name
)
def test_other_departments_record_is_404(hospital, endpoint):
    client = api_client(getattr(hospital, endpoint.allowed))

    response = _call(client, endpoint, hospital, endpoint.other_department(hospital))

    assert response.status_code == 404


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_allowed_persona_gets_through(hospital, endpoint):
    client = api_client(getattr(hospital, endpoint.allowed))

    assert _call(client, endpoint, hospital).status_code == endpoint.ok_status


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_leader_reads_everything_and_writes_nothing(hospital, endpoint):
    response = _call(api_client(hospital.erin), endpoint, hospital)

    if endpoint.writes:
        assert response.status_code == 403
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_administrator_may_do_everything(hospital, endpoint):
    assert _call(api_client(hospital.frank), endpoint, hospital).status_code == endpoint.ok_status


def test_leader_with_a_write_permission_from_the_admin_still_cannot_write(hospital):
    hospital.erin.user_permissions.add(Permission.objects.get(codename="reveal_patient"))
    patient = cardio_patient(hospital)

    response = api_client(hospital.erin).post(f"/api/v1/patients/{patient.pk}/reveal/")

    assert response.status_code == 403


def test_every_api_route_is_in_the_matrix():
    """A new endpoint must be listed in endpoints.py, so that its permissions get tested."""
    _prefix, api = get_resolver().namespace_dict["api"]
    routes = {name for name in api.reverse_dict if isinstance(name, str)} - {"token"}
    listed = {e.name.split(" ")[0] for e in ENDPOINTS}

    assert routes - listed == set()
