# SPDX-License-Identifier: LGPL-2.1-or-later
# Support for the image's own tests (tests/image/tests, in the test image
# /app/tests/image): TAP output, skips with a reason, and the machine's own
# layout. The container is the sandbox: overlayfs-init put /data/system on
# a tmpfs and assembled the root over it, so a test mounts no tmpfs of its
# own and cleans nothing up; the container's end does.
#
#   . /app/tests/lib.sh
#   t_begin "what is checked"; ...; t_ok / t_fail "why" / t_check CMD...
#   create_service NAME BODY     an s6 service dir in $SCANDIR, down
#   enable_service NAME [SECS]   starts it and waits until it is up
#   t_done

set -u
SYSTEM_DIR=${SYSTEM_DIR:-/data/system}
STATE_DIR=${STATE_DIR:-/data/state}
SCANDIR=${SCANDIR:-/etc/s6}
# Which container run of `scripts/test-image run` this is: 1, then 2 with
# the same /data/state volume.
STRATA_IMAGE_RUN=${STRATA_IMAGE_RUN:-1}
# The TAP helpers (t_begin, t_ok, t_fail, t_check, t_done, t_skip_all),
# shared with the integration tests; create_service, enable_service and
# wait_file, shared with them too.
. /app/tests/tap.sh
. /app/tests/services.sh
