"""The benchmark: this project's configuration against Rasa's stock one on the same data
(`make benchmark`; see benchmark/README.md)."""
