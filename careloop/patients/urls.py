from django.urls import path

from careloop.patients import import_views, views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("export/", views.patient_export, name="export"),
    path("new/", views.patient_create, name="create"),
    path("<int:pk>/", views.patient_detail, name="detail"),
    path("<int:pk>/edit/", views.patient_edit, name="edit"),
    path("<int:pk>/reveal/<str:field>/", views.reveal, name="reveal"),
    path("<int:pk>/flags/", views.flags, name="flags"),
    path("<int:pk>/contacts/add/", views.contact_add, name="contact_add"),
    path(
        "<int:pk>/contacts/<int:contact_pk>/delete/",
        views.contact_remove,
        name="contact_remove",
    ),
    path("blocks/", views.block_list, name="blocks"),
    path("blocks/add/", views.block_add, name="block_add"),
    path("blocks/<int:block_pk>/delete/", views.block_remove, name="block_remove"),
    path("import/", import_views.upload, name="import"),
    path("import/<int:batch_id>/", import_views.batch_detail, name="import_batch"),
    path("import/<int:batch_id>/rejected.xlsx", import_views.rejected_xlsx, name="import_rejected"),
]
