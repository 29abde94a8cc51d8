"""clinic.yml is checked at start-up with messages that say what is wrong."""
from pathlib import Path

import pytest
import yaml

from actions.clinic_settings import ClinicConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, **overrides):
    values = {**yaml.safe_load((ROOT / "clinic.yml").read_text()), **overrides}
    path = tmp_path / "clinic.yml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_shipped_settings_load_and_use_placeholder_contacts():
    clinic = load_settings(ROOT / "clinic.yml")
    assert clinic.name == "Miami Massage and Head Spa"
    assert clinic.emergency_number == "911"
    # Nothing the sources don't state is configured as a real value.
    assert clinic.prices == clinic.hours == clinic.address == clinic.insurance == ""
    assert clinic.email.endswith(".example") and ".example" in clinic.booking_page


@pytest.mark.parametrize(
    "override, message",
    [
        ({"name": ""}, "required setting(s) missing or empty: name"),
        ({"email": "not-an-email"}, "'email' does not look valid"),
        ({"phone": "call us"}, "'phone' does not look valid"),
        ({"booking_page": "www.no-scheme.example"}, "'booking_page' does not look valid"),
        ({"emergency_number": "nine one one"}, "'emergency_number' should be a short number"),
        ({"opening_hours": "9-5"}, "unknown setting(s) opening_hours"),
        ({"prices": ["60 min", "90 min"]}, "'prices' should be text"),
    ],
)
def test_bad_settings_are_named(tmp_path, override, message):
    with pytest.raises(ClinicConfigError) as error:
        load_settings(write(tmp_path, **override))
    assert message in str(error.value)


def test_broken_yaml_and_missing_file_are_reported(tmp_path):
    broken = tmp_path / "clinic.yml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ClinicConfigError, match="not valid YAML"):
        load_settings(broken)
    with pytest.raises(ClinicConfigError, match="not found"):
        load_settings(tmp_path / "missing.yml")
