import secrets

from django.contrib import admin

from careloop.contactcenter.choices import PhoneKind
from careloop.contactcenter.models import AgentPhone


@admin.register(AgentPhone)
class AgentPhoneAdmin(admin.ModelAdmin):
    list_display = ("sip_username", "user", "kind", "uri", "last_registration_at")
    exclude = ("sip_password",)
    readonly_fields = ("registered_contact", "last_registration_at", "registration_expires_at")

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if obj.kind == PhoneKind.REGISTERED and not obj.sip_password:
            obj.sip_password = secrets.token_urlsafe(24)  # shown to its user on /cc/phone/
        super().save_model(request, obj, form, change)
