from django.urls import path

from careloop.contactcenter import views

app_name = "contactcenter"

urlpatterns = [
    path("call/", views.click_to_call, name="click_to_call"),
    path("call/<int:patient_id>/", views.call_patient, name="call_patient"),
    path("calls/<int:pk>/", views.call_detail, name="call"),
    path("calls/<int:pk>/hangup/", views.call_hangup, name="hangup"),
    path("calls/<int:pk>/hangup/rating/", views.call_hangup_rating, name="hangup_rating"),
    path("recordings/<int:pk>/", views.recording_play, name="recording"),
    path("phone/", views.my_phone, name="my_phone"),
    path("ratings/", views.ratings, name="ratings"),
    path("ratings/export/", views.ratings_export, name="ratings_export"),
    path("engine/events/", views.engine_events, name="engine_events"),
]
