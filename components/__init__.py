"""Custom Rasa NLU components of this project (referenced by path in config.yml).

Rasa imports this package to load the pipeline, which also installs three
adjustments to how the Rasa server treats the action server:
- action_response_check.py: its answers are checked against the same schema
  with the same errors, the schema itself checked once instead of on every call;
- action_server_down.py: when it can't be reached, the visitor is told and
  given the clinic's contacts instead of getting no reply;
- action_server_session.py: the calls share one kept-alive HTTP session instead
  of opening a new one each.
"""
from components import action_response_check, action_server_down, action_server_session

action_response_check.install()
action_server_down.install()
action_server_session.install()
