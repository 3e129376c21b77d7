from django.urls import path

from careloop.outreach import views

app_name = "outreach"

urlpatterns = [
    path("policy/", views.policy_edit, name="policy"),
    path("patients/<int:patient_id>/blocks/", views.block_add, name="block_add"),
    path("blocks/<int:pk>/lift/", views.block_lift, name="block_lift"),
]
