# The action server (actions/): rasa-sdk's server started by actions/server.py. Build from the
# repository root:
#   docker build -f deploy/actions.Dockerfile -t sciatica-assistant/actions .
# (deploy/compose.yml does this). The official image has rasa-sdk in /opt/venv and runs as user 1001.

FROM rasa/rasa-sdk:3.6.2
# Root to install packages; back to the image's user 1001 below.
# hadolint ignore=DL3066
USER root
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1

# What actions/ imports beyond rasa-sdk, at the versions the tests ran with (constraints.txt):
# aiohttp (webhooks), PyYAML (clinic.yml, data/faq), SQLAlchemy + psycopg2 (the outbox in
# PostgreSQL). tzdata: the clinic's time zone must be found even where the OS has no
# time-zone database. actions/ needs Python 3.9 or later (zoneinfo): checked first.
COPY constraints.txt /tmp/constraints.txt
RUN python -c "import sys; assert sys.version_info >= (3, 9), 'actions/ needs Python 3.9+, this image has ' + sys.version" \
    && python -m pip install --no-cache-dir -c /tmp/constraints.txt \
        "aiohttp==3.9.5" "PyYAML==6.0.3" "SQLAlchemy==1.4.54" "psycopg2-binary==2.9.13" "tzdata==2026.6" \
    && rm /tmp/constraints.txt \
    && python -c "import rasa_sdk; assert rasa_sdk.__version__ == '3.6.2', rasa_sdk.__version__"

# What the actions read at run time: the clinic's details and the FAQ titles.
COPY actions/ actions/
COPY data/faq/ data/faq/
COPY clinic.yml ./

USER 1001
EXPOSE 5055
# Listens on every interface of the container: only the Rasa servers reach it, on the
# compose file's internal network (it has no authentication of its own).
ENTRYPOINT ["python", "-m", "actions.server"]
CMD ["--host", "0.0.0.0", "--port", "5055"]
