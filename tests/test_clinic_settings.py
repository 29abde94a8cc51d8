"""clinic.yml is checked at start-up with messages that say what is wrong."""
import os
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
        ({"time_zone": "Miami"}, "'time_zone' 'Miami' is not a known time zone"),
        ({"time_zone": ""}, "required setting(s) missing or empty: time_zone"),
        ({"session_lengths": "an hour"}, "'session_lengths' should be a list of minutes"),
        ({"session_lengths": [60, 600]}, "between 15 and 240 minutes"),
        ({"booking_webhook_url": "http://bookings.example/hook"}, "'booking_webhook_url' must use https://"),
        ({"staff_webhook_url": "not a url"}, "'staff_webhook_url' does not look like a web address"),
        ({"booking_webhook_secret": "abc"}, "secrets come from the environment (BOOKING_WEBHOOK_SECRET)"),
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


def test_a_webhook_needs_its_secret_from_the_environment(tmp_path, monkeypatch):
    path = write(tmp_path, booking_webhook_url="https://bookings.example/hook")
    monkeypatch.delenv("BOOKING_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ClinicConfigError, match="environment variable BOOKING_WEBHOOK_SECRET is empty"):
        load_settings(path)
    monkeypatch.setenv("BOOKING_WEBHOOK_SECRET", "short")
    with pytest.raises(ClinicConfigError, match="BOOKING_WEBHOOK_SECRET is too short"):
        load_settings(path)
    monkeypatch.setenv("BOOKING_WEBHOOK_SECRET", "a-long-enough-shared-secret")
    clinic = load_settings(path)
    assert clinic.webhook_for("booking_request").secret == "a-long-enough-shared-secret"
    assert "a-long-enough-shared-secret" not in repr(clinic)  # never printed in logs


def test_the_environment_can_point_webhooks_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("STAFF_WEBHOOK_URL", "http://127.0.0.1:9999/staff")  # local: http is fine
    monkeypatch.setenv("STAFF_WEBHOOK_SECRET", "another-long-shared-secret")
    clinic = load_settings(write(tmp_path))
    assert clinic.webhook_for("handover").url == "http://127.0.0.1:9999/staff"
    assert clinic.webhook_for("booking_request") is None  # not configured: requests wait in the outbox


def test_start_up_check_prints_the_problem_and_fails(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "CLINIC_CONFIG": str(write(tmp_path, time_zone="Mars/Olympus"))}
    result = subprocess.run([sys.executable, "-m", "actions.clinic_settings"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "Clinic settings problem" in result.stderr and "not a known time zone" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_action_server_refuses_to_start_with_bad_settings(tmp_path):
    """The action server imports every actions/ module; actions/startup.py stops it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CLINIC_CONFIG": str(write(tmp_path, email="front desk"))}
    result = subprocess.run([sys.executable, "-c", "import actions.startup"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "'email' does not look valid" in result.stderr


def test_an_edited_clinic_file_is_used_without_a_restart_and_a_broken_edit_keeps_the_last_good_one(
        clinic_config, caplog):
    from actions.clinic_settings import settings

    first = clinic_config(hours="Mon-Fri 9-5")
    assert settings().hours == "Mon-Fri 9-5"
    path = Path(os.environ["CLINIC_CONFIG"])
    values = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**values, "hours": "Mon-Sat 9-6"}))
    assert settings().hours == "Mon-Sat 9-6"
    path.write_text("name: [unclosed\n")
    assert settings().hours == "Mon-Sat 9-6"
    assert "not reloaded" in caplog.text
    assert first.name == settings().name
