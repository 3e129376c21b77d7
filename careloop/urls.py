from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", include("careloop.core.urls")),
    path("accounts/", include("careloop.accounts.urls")),
    path("patients/", include("careloop.patients.urls")),
    path("followup/", include("careloop.followup.urls")),
    path("surveys/", include("careloop.surveys.urls")),
    path("audit/", include("careloop.audit.urls")),
    path("cc/", include("careloop.contactcenter.urls")),
    path("alerts/", include("careloop.alerts.urls")),
    path("campaigns/", include("careloop.campaigns.urls")),
    path("outreach/", include("careloop.outreach.urls")),
    path("reminders/", include("careloop.outreach.reminder_urls")),
    path("api/v1/", include("careloop.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
]
