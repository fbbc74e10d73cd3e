#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The developer's menu: build, test, demo, or the orchestrator's dev loop.
#
#   scripts/dev-start.sh            show the menu, read a choice
#   scripts/dev-start.sh CHOICE     run one entry (build, test, demo, loop)
#   scripts/dev-start.sh --list     print the entries and their commands
#
# loop is scripts/dev-container-test.sh (DEV_TARGET=HOST for an ssh target,
# DEV_SSH_CONFIG=FILE for its ssh config; without one, the local target: the
# VM lab's instance when it runs, else a lab machine; DEV_LOCAL=vm|lab).
set -u
cd "$(dirname "$0")/.." || exit 1

entries="build|make build|build strata (meson + ninja, dependencies first)
test|make check|every suite: unit, integration, format, docs, sanitizers
demo|make demo|the demo: a throwaway machine, migrations, the orchestrator daemon
loop|scripts/dev-container-test.sh \${DEV_TARGET:+--target \$DEV_TARGET} \${DEV_SSH_CONFIG:+--ssh-config \$DEV_SSH_CONFIG} \${DEV_LOCAL:+--local \$DEV_LOCAL}|the orchd dev loop: sync, build, restart, smoke tests, again on Enter"

command_of() {
    printf '%s\n' "$entries" | awk -F'|' -v k="$1" '$1 == k { print $2 }'
}

case "${1:-}" in
-h | --help) sed -n '3,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
--list) printf '%s\n' "$entries" | awk -F'|' '{ printf "%-6s %-40s %s\n", $1, $2, $3 }'; exit 0 ;;
"")
    printf '%s\n' "$entries" | awk -F'|' '{ printf "  %d) %-6s %s\n", NR, $1, $3 }'
    printf '  q) quit\nchoice: '
    read -r choice || exit 0
    case "$choice" in
    q | Q | "") exit 0 ;;
    [0-9]*) choice=$(printf '%s\n' "$entries" | awk -F'|' -v n="$choice" 'NR == n { print $1 }') ;;
    esac
    ;;
*) choice=$1 ;;
esac
cmd=$(command_of "$choice")
if [ -z "$cmd" ]; then
    echo "dev-start: no entry '$choice' (build, test, demo or loop)" >&2
    exit 2
fi
echo "+ $cmd"
eval "exec $cmd"
