"""Custom Rasa NLU components of this project (referenced by path in config.yml)."""
