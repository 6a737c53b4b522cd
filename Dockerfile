# Processing image of the srcohort workflow extension: every srcohort step in Kaapana.
# Its build context is this folder (the repository root), as Kaapana's build scripts build every
# image in its Dockerfile's folder (build-scripts/build_helper/container/container.py);
# .dockerignore keeps the context to the package, its data and its pins.
# Kaapana 0.6 starts processing pods with the image's entrypoint (operators name the step in
# $SRCOHORT_STEP). dcmtk's dcmsend comes with the base image.
# hadolint global ignore=DL3007
FROM local-only/base-python-cpu:latest

LABEL IMAGE="srcohort"
LABEL VERSION="0.1.0"
LABEL BUILD_IGNORE="False"

COPY . /tmp/srcohort-src
# Studies, SR templates and dashboards are package data (MANIFEST.in): the install carries them.
RUN pip install --no-cache-dir -c /tmp/srcohort-src/constraints.txt "/tmp/srcohort-src[kaapana]" \
    && rm -rf /tmp/srcohort-src

WORKDIR /kaapana/app
ENTRYPOINT ["srcohort-kaapana"]
