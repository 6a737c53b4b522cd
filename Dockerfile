# Processing container for the srcohort operators (entrypoint: the step in $SRCOHORT_SCRIPT,
# else the srcohort CLI).
# Build context: the repository root, with Dockerfile.dockerignore next to this file:
#   docker build -f operators/processing-containers/srcohort/Dockerfile \
#       -t <registry>/srcohort:<kaapana-version> .
# Kaapana's label keys (read by its build scripts) are upper case.
# hadolint global ignore=DL3048
FROM python:3.11-slim

LABEL IMAGE="srcohort"
LABEL VERSION="0.1.0"
LABEL BUILD_IGNORE="False"

# dsrdump (dcmtk) and dciodvfy (dicom3tools) check every SR before it is sent.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends dcmtk dicom3tools \
    && rm -rf /var/lib/apt/lists/*

# requirements.txt is used as constraints only: it pins versions without
# installing what the container does not need (e.g. apache-airflow).
COPY . /tmp/srcohort-src
RUN pip install --no-cache-dir -c /tmp/srcohort-src/requirements.txt /tmp/srcohort-src \
    && rm -rf /tmp/srcohort-src

# SR template profiles are data next to the package, not inside it.
COPY sr_templates/ /kaapana/app/sr_templates/
ENV SRCOHORT_TEMPLATES=/kaapana/app/sr_templates

COPY operators/processing-containers/srcohort/files/entrypoint.sh /kaapana/app/entrypoint.sh
WORKDIR /kaapana/app
ENTRYPOINT ["/kaapana/app/entrypoint.sh"]
CMD ["--help"]
