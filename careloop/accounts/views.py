from __future__ import annotations

import math
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.messages.views import SuccessMessageMixin
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from careloop.accounts import queries, services
from careloop.accounts.decorators import AuthedRequest, permission_required
from careloop.accounts.forms import LoginForm
from careloop.accounts.middleware import IDLE_LOGOUT_FLAG


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    if request.session.pop(IDLE_LOGOUT_FLAG, False):
        messages.info(
            request,
            _(
                "You were logged out after %(minutes)d minutes without activity. Please log in again."
            )
            % {"minutes": max(1, settings.SESSION_IDLE_TIMEOUT_SECONDS // 60)},
        )
    if request.user.is_authenticated and request.method != "POST":
        return redirect(_safe_next(request))
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        attempt = services.attempt_login(
            request,
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
        )
        if attempt.user is not None:
            login(request, attempt.user)
            return redirect(_safe_next(request))
        if attempt.error == services.LoginError.LOCKED and attempt.locked_until is not None:
            minutes = math.ceil((attempt.locked_until - timezone.now()).total_seconds() / 60)
            form.add_error(
                None,
                _(
                    "Too many failed log-ins: this account is locked until %(time)s "
                    "(%(minutes)d more minutes). Try again later or ask an administrator "
                    "to unlock it."
                )
                % {
                    "time": timezone.localtime(attempt.locked_until).strftime("%H:%M"),
                    "minutes": max(1, minutes),
                },
            )
        else:
            form.add_error(None, _("Wrong user name or password."))
    return render(
        request,
        "accounts/login.html",
        {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")},
    )


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("core:home")
    success_message = gettext_lazy("Your password has been changed.")


@permission_required("accounts.view_user")
def staff_list(request: AuthedRequest) -> HttpResponse:
    staff = queries.staff_visible_to(request.user)
    q = request.GET.get("q", "").strip()
    if q:
        staff = queries.search_staff(staff, q)
    page = Paginator(staff, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "accounts/staff_list.html",
        {"page": page, "q": q, "query": urlencode({"q": q}) if q else "", "now": timezone.now()},
    )


@require_POST
@permission_required("accounts.change_user")
def unlock(request: AuthedRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(queries.staff_visible_to(request.user), pk=pk)
    services.unlock(account, acting_user=request.user)
    messages.success(request, _("The account %(name)s is unlocked.") % {"name": account})
    return redirect("accounts:staff")
