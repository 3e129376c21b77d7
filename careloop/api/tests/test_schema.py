from __future__ import annotations

import re

import yaml
from django.core.management import call_command

from .factories import api_client

CJK = re.compile(r"[\u3400-\u9fff]")


def test_schema_generates_and_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    # --fail-on-warn turns every drf-spectacular warning (unresolvable type, ...) into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--lang", "en", "--file", target)

    schema = yaml.safe_load(target.read_text())
    assert "/api/v1/patients/{id}/reveal/" in schema["paths"]
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_english_schema_has_no_chinese_outside_the_title(hospital):
    response = api_client(hospital.alice).get("/api/schema/", {"lang": "en", "format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert not CJK.search(str(schema["paths"]))
    assert not CJK.search(str(schema["components"]))


def test_every_operation_has_a_summary_and_documents_401(hospital):
    schema = api_client(hospital.alice).get("/api/schema/", {"format": "json"}).json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            if path != "/api/v1/auth/token/":
                assert "401" in operation["responses"], f"{method} {path} omits 401"
