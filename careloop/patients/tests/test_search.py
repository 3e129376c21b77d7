"""The combined search box of the patient list (F1.6)."""

from __future__ import annotations

import pytest

from careloop.core.testing import make_encounter, make_patient
from careloop.patients import queries
from careloop.patients.models import Patient
from careloop.patients.tests.factories import make_contact


@pytest.fixture
def people(hospital):
    """Three cardiology patients with distinct data, and one orthopaedics patient."""
    zhang = make_patient(
        name="张三丰",
        name_initials="zsf",
        phone="13812345678",
        card_no="C900001",
        record_no="R900001",
        id_number="11010519491231002X",
    )
    make_encounter(
        zhang, hospital.cardio, diagnosis_code="I21.0", diagnosis_name="急性前壁心肌梗死"
    )
    li = make_patient(name="李四", name_initials="ls", phone="010-87654321", card_no="C900002")
    make_encounter(li, hospital.cardio, diagnosis_code="I50.9", diagnosis_name="心力衰竭")
    make_contact(li, phone="13955554321", name="李小四")
    wang = make_patient(name="王五", name_initials="ww", phone="13700001111", card_no="C900003")
    make_encounter(wang, hospital.cardio, diagnosis_code="E11.9", diagnosis_name="2型糖尿病")
    zhao = make_patient(name="赵六", name_initials="zl", phone="13600005678", card_no="C900004")
    make_encounter(zhao, hospital.ortho, diagnosis_code="S72.0", diagnosis_name="股骨颈骨折")
    return {"zhang": zhang, "li": li, "wang": wang, "zhao": zhao}


def names(text, user=None):
    patients = Patient.objects.all() if user is None else queries.visible_to(user)
    return sorted(p.name for p in queries.search(patients, text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("张三", ["张三丰"]),
        ("三丰", ["张三丰"]),
        ("zsf", ["张三丰"]),
        ("ZS", ["张三丰"]),
        ("13812345678", ["张三丰"]),
        ("C900002", ["李四"]),
        ("c900002", ["李四"]),
        ("R900001", ["张三丰"]),
        ("11010519491231002x", ["张三丰"]),
        ("I21", ["张三丰"]),
        ("i50.9", ["李四"]),
        ("心力衰竭", ["李四"]),
        ("糖尿病", ["王五"]),
        ("87654321", ["李四"]),
        ("01087654321", ["李四"]),
        ("１３８１２３４５６７８", ["张三丰"]),
    ],
)
def test_search_finds_by_each_field(people, text, expected):
    assert names(text) == expected


def test_last_four_digits_match_own_and_family_phones(people):
    assert names("5678") == ["张三丰", "赵六"]
    assert names("4321") == ["李四"]  # 010-87654321 and the son's 13955554321
    assert names("1111") == ["王五"]


def test_four_digits_do_not_match_the_middle_of_a_number(people):
    assert names("1234") == []


def test_every_word_must_match(people):
    assert names("zsf I21") == ["张三丰"]
    assert names("zsf I50") == []


def test_initials_match_from_the_start(people):
    assert names("sf") == []


def test_search_stays_inside_the_users_departments(people, hospital):
    assert names("5678", user=hospital.alice) == ["张三丰"]
    assert names("5678", user=hospital.bob) == ["赵六"]
    assert names("5678", user=hospital.erin) == ["张三丰", "赵六"]


def test_search_box_on_the_list_page(client, people, hospital):
    client.force_login(hospital.alice)

    response = client.get("/patients/", {"q": "zsf"})

    assert [p.name for p in response.context["page"]] == ["张三丰"]
