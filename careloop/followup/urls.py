from django.urls import path

from careloop.followup.views import figures, plans, tasks

app_name = "followup"

urlpatterns = [
    path("", tasks.workspace, name="workspace"),
    path("tasks/", tasks.task_list, name="task_list"),
    path("tasks/export/", tasks.task_export, name="task_export"),
    path("tasks/<int:pk>/", tasks.task_detail, name="task_detail"),
    path("tasks/<int:pk>/claim/", tasks.task_claim, name="task_claim"),
    path("tasks/<int:pk>/assign/", tasks.task_assign, name="task_assign"),
    path("notifications/<int:pk>/read/", tasks.notification_read, name="notification_read"),
    path("notifications/read/", tasks.notifications_read_all, name="notifications_read_all"),
    path("plans/", plans.plan_list, name="plan_list"),
    path("plans/new/", plans.plan_create, name="plan_create"),
    path("plans/<int:pk>/", plans.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/edit/", plans.plan_edit, name="plan_edit"),
    path("teams/", plans.team_list, name="team_list"),
    path("teams/new/", plans.team_create, name="team_create"),
    path("teams/<int:pk>/edit/", plans.team_edit, name="team_edit"),
    path("enrol/<int:patient_id>/", plans.enrol, name="enrol"),
    path("enrollments/<int:pk>/withdraw/", plans.enrollment_withdraw, name="enrollment_withdraw"),
    path("figures/", figures.figures, name="figures"),
    path("figures/export/", figures.figures_export, name="figures_export"),
]
