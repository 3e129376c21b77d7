from django.contrib.auth import views as auth_views
from django.urls import path

from careloop.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("staff/", views.staff_list, name="staff"),
    path("staff/<int:pk>/unlock/", views.unlock, name="unlock"),
]
