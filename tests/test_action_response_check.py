"""The action server's answers are checked exactly as Rasa checks them, just faster
(components/action_response_check.py): a malformed answer is still refused with
Rasa's error, a valid one still accepted."""
from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

import components  # noqa: F401  (installs the check, as loading the pipeline does)
from components.action_response_check import validate_action_result

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "phone", "value": "x"}], "responses": [{"text": "Thanks!"}]},
    {"events": [{"event": "active_loop", "name": None}, {"event": "followup", "name": "utter_x"}],
     "responses": [{"text": "hi", "buttons": [{"title": "a", "payload": "/a"}]}]},
]
INVALID = [
    {"events": [{"name": "missing the event key"}], "responses": []},
    {"events": [{"event": "no_such_event"}], "responses": []},
    {"events": "not a list", "responses": []},
]


def test_loading_the_pipeline_installs_the_check():
    assert RemoteAction._validate_action_result is validate_action_result


@pytest.mark.parametrize("response", VALID)
def test_a_valid_answer_is_accepted(response):
    validate(response, RemoteAction.action_response_format_spec())  # Rasa's own check agrees
    assert RemoteAction("action_x", None)._validate_action_result(response) is True


@pytest.mark.parametrize("response", INVALID)
def test_a_malformed_answer_is_refused_with_rasas_error(response):
    with pytest.raises(ValidationError) as stock:
        validate(response, RemoteAction.action_response_format_spec())
    with pytest.raises(ValidationError) as ours:
        RemoteAction("action_x", None)._validate_action_result(response)
    assert ours.value.message.startswith(stock.value.message)
    assert "Failed to validate Action server response" in ours.value.message
