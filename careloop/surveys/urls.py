from django.urls import path

from careloop.surveys import views

app_name = "surveys"

urlpatterns = [
    path("", views.questionnaire_list, name="list"),
    path("new/", views.questionnaire_create, name="create"),
    path("<int:pk>/", views.questionnaire_detail, name="detail"),
    path("<int:pk>/edit/", views.questionnaire_edit, name="edit"),
    path("<int:pk>/archive/", views.questionnaire_archive, name="archive"),
    path("<int:pk>/preview/", views.questionnaire_preview, name="preview"),
    path("responses/<int:pk>/", views.response_detail, name="response_detail"),
]
