#!/bin/sh
# Kaapana 0.6 starts processing pods with the image's entrypoint and ignores an operator's
# cmds/arguments; srcohort operators therefore pass their step as $SRCOHORT_SCRIPT. Without it
# the container is the plain srcohort CLI.
set -eu
if [ -n "${SRCOHORT_SCRIPT:-}" ]; then
    exec /bin/sh -c "$SRCOHORT_SCRIPT"
fi
exec srcohort "$@"
