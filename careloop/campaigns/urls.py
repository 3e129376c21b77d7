from django.urls import path

from careloop.campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_create, name="create"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/list/", views.campaign_build, name="build"),
    path("<int:pk>/list/clear/", views.campaign_clear, name="clear"),
    path("<int:pk>/state/<str:action>/", views.campaign_action, name="action"),
    path("<int:pk>/preview/", views.campaign_preview, name="preview"),
    path("<int:pk>/targets/<int:target_pk>/skip/", views.campaign_skip, name="skip"),
    path("<int:pk>/report/", views.campaign_report, name="report"),
    path("<int:pk>/report/export/", views.campaign_export, name="export"),
]
