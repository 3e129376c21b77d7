from django.apps import AppConfig


class ContactcenterConfig(AppConfig):
    name = "careloop.contactcenter"
    label = "contactcenter"
