from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from careloop.patients.choices import BlockKind, EncounterKind, ImportStatus, Relation, Sex


class Patient(models.Model):
    """A patient's master record (健康档案); visible to staff of the departments that treated them."""

    name = models.CharField(_("full name"), max_length=50)
    name_initials = models.CharField(_("pinyin initials"), max_length=50, blank=True, db_index=True)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    id_number = models.CharField(_("ID-card number"), max_length=18, blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    card_no = models.CharField(
        _("visit card number"), max_length=32, null=True, blank=True, unique=True
    )
    card_pin_hash = models.CharField(_("phone PIN"), max_length=128, blank=True)
    record_no = models.CharField(
        _("medical record number"), max_length=32, null=True, blank=True, unique=True
    )
    vip_level = models.PositiveSmallIntegerField(_("VIP level"), default=0)
    registered_department = models.ForeignKey(
        "accounts.Department",
        verbose_name=_("registered by department"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="registered_patients",
        help_text=_(
            "The department that created the record; its staff see the patient before any encounter."
        ),
    )
    tags = models.JSONField(_("tags"), default=list, blank=True)
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    is_deceased = models.BooleanField(_("deceased"), default=False)
    deceased_on = models.DateField(_("date of death"), null=True, blank=True)
    do_not_contact = models.BooleanField(_("do not contact"), default=False)
    sms_opt_out = models.BooleanField(_("SMS opt-out"), default=False)
    call_opt_out = models.BooleanField(_("call opt-out"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        permissions = [
            ("reveal_patient", _("Can reveal full phone and ID numbers")),
            ("import_patients", _("Can import patients")),
            ("export_patients", _("Can export patient lists")),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def contactable(self) -> bool:
        return not (self.is_deceased or self.do_not_contact)


class PatientContact(models.Model):
    """A phone number of the patient or a family member, with the relation."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(_("name"), max_length=50, blank=True)
    relation = models.CharField(
        _("relation"), max_length=20, choices=Relation.choices, default=Relation.OTHER
    )
    phone = models.CharField(_("phone"), max_length=20, db_index=True)
    is_primary = models.BooleanField(_("primary"), default=False)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "phone"], name="patient_contact_unique_phone"
            )
        ]


class Encounter(models.Model):
    """An outpatient visit, inpatient stay or emergency visit (就诊 / 住院)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="encounters")
    encounter_no = models.CharField(_("encounter number"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=EncounterKind.choices)
    department = models.ForeignKey(
        "accounts.Department", on_delete=models.PROTECT, related_name="encounters"
    )
    ward = models.CharField(_("ward"), max_length=50, blank=True)
    bed = models.CharField(_("bed"), max_length=20, blank=True)
    attending_doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attending_doctor_name = models.CharField(_("attending doctor"), max_length=50, blank=True)
    started_at = models.DateTimeField(_("admitted / visit time"))
    discharged_at = models.DateTimeField(_("discharged"), null=True, blank=True, db_index=True)
    diagnosis_code = models.CharField(
        _("diagnosis code (ICD-10)"), max_length=20, blank=True, db_index=True
    )
    diagnosis_name = models.CharField(_("diagnosis"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("encounter")
        verbose_name_plural = _("encounters")
        indexes = [models.Index(fields=["department", "discharged_at"])]

    def __str__(self) -> str:
        return self.encounter_no


class Surgery(models.Model):
    """An operation performed during an encounter."""

    encounter = models.ForeignKey(Encounter, on_delete=models.CASCADE, related_name="surgeries")
    code = models.CharField(_("procedure code"), max_length=20, blank=True, db_index=True)
    name = models.CharField(_("operation"), max_length=200)
    performed_at = models.DateTimeField(_("performed"))
    surgeon_name = models.CharField(_("surgeon"), max_length=50, blank=True)

    class Meta:
        ordering = ["-performed_at"]
        verbose_name = _("surgery")
        verbose_name_plural = _("surgeries")


class Medication(models.Model):
    """A discharge medication (出院带药) with the dispensed quantity, used for refill reminders."""

    encounter = models.ForeignKey(Encounter, on_delete=models.CASCADE, related_name="medications")
    drug = models.CharField(_("drug"), max_length=100)
    dose = models.CharField(_("dose"), max_length=50, blank=True)
    frequency = models.CharField(_("frequency"), max_length=50, blank=True)
    route = models.CharField(_("route"), max_length=50, blank=True)
    quantity = models.DecimalField(
        _("quantity"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    unit = models.CharField(_("unit"), max_length=20, blank=True)
    daily_amount = models.DecimalField(
        _("daily amount"), max_digits=10, decimal_places=2, null=True, blank=True
    )

    class Meta:
        verbose_name = _("discharge medication")
        verbose_name_plural = _("discharge medications")


class DischargeOrder(models.Model):
    """A discharge order (出院医嘱), e.g. re-examination in two weeks."""

    encounter = models.ForeignKey(Encounter, on_delete=models.CASCADE, related_name="orders")
    text = models.TextField(_("order"))

    class Meta:
        verbose_name = _("discharge order")
        verbose_name_plural = _("discharge orders")


class PhoneBlock(models.Model):
    """A number that is blocked inbound or never dialled (来电黑名单 / 免打扰, F1.7)."""

    phone = models.CharField(_("phone"), max_length=20)
    kind = models.CharField(_("kind"), max_length=20, choices=BlockKind.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("blocked number")
        verbose_name_plural = _("blocked numbers")
        constraints = [models.UniqueConstraint(fields=["phone", "kind"], name="phone_block_unique")]


class ImportBatch(models.Model):
    """One import of a patient file, with its per-row report; nothing is dropped silently."""

    file_name = models.CharField(_("file"), max_length=200)
    status = models.CharField(
        _("status"), max_length=20, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    column_mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected = models.JSONField(_("rejected rows"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")
