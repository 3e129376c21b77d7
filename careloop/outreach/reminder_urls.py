from django.urls import path

from careloop.outreach import reminder_views as views

app_name = "reminders"

urlpatterns = [
    path("", views.reminder_list, name="list"),
    path("export/", views.reminder_export, name="export"),
    path("patients/<int:patient_id>/add/", views.reminder_add, name="add"),
    path("<int:pk>/cancel/", views.reminder_cancel, name="cancel"),
]
