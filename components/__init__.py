"""Custom Rasa NLU components of this project (referenced by path in config.yml).

Rasa imports this package to load the pipeline, which also installs the faster
check of the action server's answers (action_response_check.py): same schema,
same errors, the schema itself checked once instead of on every call.
"""
from components import action_response_check

action_response_check.install()
