#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Kernel audit in the image: the test-runner's command starts auditd when
# the kernel accepts it from this container; then it is registered. The
# kernel takes an audit daemon only from the initial pid namespace, so in a
# podman container this skips, saying so.
. /app/tests/lib.sh

command -v auditctl >/dev/null 2>&1 || t_skip_all "auditctl is missing (package auditd)"
if ! st=$(auditctl -s 2>&1); then
    t_skip_all "the kernel refuses audit in this container: $st"
fi

t_begin "auditd is registered with the kernel"
pid=$(echo "$st" | awk '$1 == "pid" { print $2 }')
[ -n "$pid" ] && [ "$pid" != 0 ] && kill -0 "$pid" 2>/dev/null && t_ok ||
    t_fail "auditctl -s: $st"

t_done
