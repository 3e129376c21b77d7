from __future__ import annotations

from django.contrib import admin

from careloop.patients.models import (
    DischargeOrder,
    Encounter,
    ImportBatch,
    Medication,
    Patient,
    PatientContact,
    PhoneBlock,
    Surgery,
)


class ContactInline(admin.TabularInline):
    model = PatientContact
    extra = 0


class EncounterInline(admin.TabularInline):
    model = Encounter
    extra = 0
    fields = ["encounter_no", "kind", "department", "started_at", "discharged_at", "diagnosis_code"]
    show_change_link = True


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "sex",
        "birth_date",
        "card_no",
        "record_no",
        "registered_department",
        "is_deceased",
        "do_not_contact",
    ]
    list_filter = ["sex", "is_deceased", "do_not_contact", "sms_opt_out", "call_opt_out"]
    search_fields = ["name", "name_initials", "card_no", "record_no", "=phone", "=id_number"]
    inlines = [ContactInline, EncounterInline]
    readonly_fields = ["name_initials", "created_at", "updated_at"]


class SurgeryInline(admin.TabularInline):
    model = Surgery
    extra = 0


class MedicationInline(admin.TabularInline):
    model = Medication
    extra = 0


class OrderInline(admin.TabularInline):
    model = DischargeOrder
    extra = 0


@admin.register(Encounter)
class EncounterAdmin(admin.ModelAdmin):
    list_display = [
        "encounter_no",
        "patient",
        "kind",
        "department",
        "started_at",
        "discharged_at",
        "diagnosis_code",
        "diagnosis_name",
    ]
    list_filter = ["kind", "department"]
    search_fields = ["encounter_no", "diagnosis_code", "diagnosis_name", "patient__name"]
    raw_id_fields = ["patient", "attending_doctor"]
    date_hierarchy = "started_at"
    inlines = [SurgeryInline, MedicationInline, OrderInline]
    list_select_related = ["patient", "department"]


@admin.register(PhoneBlock)
class PhoneBlockAdmin(admin.ModelAdmin):
    list_display = ["phone", "kind", "reason", "created_by", "created_at"]
    list_filter = ["kind"]
    search_fields = ["phone", "reason"]
    raw_id_fields = ["created_by"]


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "file_name",
        "status",
        "created",
        "updated",
        "unchanged",
        "created_by",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status"]
    readonly_fields = ["rejected", "error", "started_at", "finished_at"]
