from django.conf import settings
from django.http import HttpRequest


def careloop(request: HttpRequest) -> dict[str, object]:
    return {"CARELOOP_IDLE_TIMEOUT": settings.SESSION_IDLE_TIMEOUT_SECONDS}
