from django.urls import include, path
from rest_framework.routers import SimpleRouter

from careloop.api import views

app_name = "api"

router = SimpleRouter(use_regex_path=False)
router.register("patients", views.PatientViewSet, basename="patient")
router.register("questionnaires", views.QuestionnaireViewSet, basename="questionnaire")
router.register("plans", views.PlanViewSet, basename="plan")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("enrollments", views.EnrollmentViewSet, basename="enrollment")

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("", include(router.urls)),
]
