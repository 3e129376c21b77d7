import pytest

from careloop.core import formats


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("0086-13800138000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),
        ("13800138000.0", "13800138000"),
        ("010-12345678", "010-12345678"),
        ("075512345678", "0755-12345678"),
    ],
)
def test_normalize_phone_accepts_hospital_formats(raw, expected):
    assert formats.normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "12345", "23800138000", "abc"])
def test_normalize_phone_rejects_with_reason(raw):
    with pytest.raises(ValueError, match="phone"):
        formats.normalize_phone(raw)


def test_mask_phone_hides_middle_digits():
    assert formats.mask_phone("13800138000") == "138****8000"
    assert formats.mask_phone("010-12345678") == "010-****5678"


def test_id_number_checks_check_digit_and_birth_date():
    valid = "11010519491231002X"
    assert formats.normalize_id_number(valid.lower()) == valid
    assert formats.id_birth_date(valid).isoformat() == "1949-12-31"
    assert formats.id_sex(valid) == "F"
    with pytest.raises(ValueError, match="check digit"):
        formats.normalize_id_number("110105194912310021")
    with pytest.raises(ValueError, match="birth date"):
        formats.normalize_id_number("110105194913310021")
    assert formats.mask_id_number(valid) == "110105********002X"


def test_pinyin_initials():
    assert formats.pinyin_initials("张三丰") == "zsf"
