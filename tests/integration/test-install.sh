#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# `make install` into a DESTDIR: the files land in FHS places (the exact
# list below), the man pages render, the completion loads, and the
# installed strata finds its data files under its own prefix.
. "$(dirname "$0")/lib.sh"
need_program meson
need_program ninja ninja-build
need_program go-md2man go-md2man
t_tmpdir
SRC=${STRATA_SOURCE_ROOT:?}
D=$T_TMP/dest
B=$T_TMP/build

t_begin "make install PREFIX=/usr DESTDIR=... builds and installs"
if make -C "$SRC" --no-print-directory install PREFIX=/usr DESTDIR="$D" INSTALL_BUILD="$B" \
    >"$T_TMP/install.log" 2>&1; then
    t_ok
else
    t_fail "$(tail -n 15 "$T_TMP/install.log")"
fi

t_begin "the installed files are exactly the expected ones"
expected='usr/bin/strata
usr/sbin/overlayfs-init
usr/sbin/strata-nfsd
usr/sbin/system-migrate
usr/share/bash-completion/completions/strata
usr/share/bash-completion/completions/system-migrate
usr/share/man/man1/strata-doctor.1
usr/share/man/man1/strata-image.1
usr/share/man/man1/strata-lab.1
usr/share/man/man1/strata-layer.1
usr/share/man/man1/strata-mounts.1
usr/share/man/man1/strata-orchd.1
usr/share/man/man1/strata-pkg.1
usr/share/man/man1/strata-vm.1
usr/share/man/man1/strata-worker.1
usr/share/man/man1/strata.1
usr/share/man/man5/strata-exports.5
usr/share/man/man8/overlayfs-init.8
usr/share/man/man8/strata-migrate.8
usr/share/man/man8/strata-nfsd.8
usr/share/man/man8/system-migrate.8
usr/share/strata/examples/migrations/20260101-001_add_app_config/install_script.sh
usr/share/strata/examples/migrations/20260101-002_remove_issue_net/install_script.sh
usr/share/strata/examples/migrations/20260101-003_add_clock_service/install_script.sh
usr/share/strata/examples/migrations/20260101-003_add_clock_service/services/strata-clock/run
usr/share/strata/examples/migrations/20260101-003_add_clock_service/services/strata-clock/timeout-kill
usr/share/strata/examples/migrations/20260101-003_add_clock_service/state
usr/share/strata/examples/migrations/README.md
usr/share/strata/nfslab/nfs-lab.sh
usr/share/strata/nfslab/posix-runner.py
usr/share/strata/nfslab/vm-packages
usr/share/strata/s6/.s6-svscan/finish
usr/share/strata/s6/test-runner/finish
usr/share/strata/s6/test-runner/run
usr/share/strata/services/strata-orchd/finish
usr/share/strata/services/strata-orchd/run
usr/share/strata/services/strata-orchd/timeout-kill
usr/share/strata/vm-guest/etc/acpi/events/strata-power
usr/share/strata/vm-guest/etc/cloud/cloud.cfg.d/90-strata-vm.cfg
usr/share/strata/vm-guest/etc/s6/acpid/run
usr/share/strata/vm-guest/etc/s6/cloud-init/run
usr/share/strata/vm-guest/etc/s6/ready/run
usr/share/strata/vm-guest/etc/s6/sshd/run
usr/share/strata/vm-guest/etc/s6/strata-run/run
usr/share/strata/vm-guest/etc/ssh/sshd_config.d/strata.conf
usr/share/strata/vm-guest/usr/lib/strata/initrd-init
usr/share/strata/vm-guest/usr/lib/strata/vm-init
usr/share/strata/vm-guest/usr/lib/strata/vm-run
usr/share/strata/vm-guest/usr/lib/strata/vm-svscan'
echo "$expected" | LC_ALL=C sort >"$T_TMP/expected"
(cd "$D" 2>/dev/null && find . \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort) >"$T_TMP/got"
if cmp -s "$T_TMP/expected" "$T_TMP/got"; then
    t_ok
else
    t_fail "$(diff "$T_TMP/expected" "$T_TMP/got")"
fi

t_begin "the s6 test-runner keeps its executable bits"
t_check test -x "$D/usr/share/strata/s6/test-runner/run" -a -x "$D/usr/share/strata/s6/.s6-svscan/finish"

t_begin "every man page renders without warnings"
bad=""
for m in "$D"/usr/share/man/man*/*; do
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
    [ -z "$w" ] || bad="$bad $(basename "$m"): $w"
done
[ -z "$bad" ] && t_ok || t_fail "$bad"

t_begin "strata-migrate(8) is system-migrate(8)"
t_check test "$(readlink "$D/usr/share/man/man8/strata-migrate.8")" = system-migrate.8

t_begin "the bash completion completes commands, migration ids, layer ids and options"
if command -v bash >/dev/null 2>&1; then
    mkdir -p "$T_TMP/m/20260101-001_one" "$T_TMP/m/20260101-002_two" \
        "$T_TMP/cd/system/layers/20260101-003_three"
    out=$(bash -c '
        . "$1"
        PATH=$2:$PATH
        COMP_WORDS=(strata mi); COMP_CWORD=1; _strata; echo "cmds: ${COMPREPLY[*]}"
        COMP_WORDS=(system-migrate --dir "$3" diff ""); COMP_CWORD=4; _system_migrate
        echo "ids: ${COMPREPLY[*]}"
        COMP_WORDS=(system-migrate --data "$4" --dir "$3" down --to ""); COMP_CWORD=7
        _system_migrate; echo "layers: ${COMPREPLY[*]}"
        COMP_WORDS=(strata lab run --e); COMP_CWORD=3; _strata; echo "opts: ${COMPREPLY[*]}"
    ' sh "$D/usr/share/bash-completion/completions/strata" "$B/src/cli" "$T_TMP/m" "$T_TMP/cd" 2>&1)
    case $out in
    *"cmds: migrate"*"ids: 20260101-001_one 20260101-002_two"*"layers: 20260101-001_one 20260101-002_two 20260101-003_three"*"opts: --ephemeral"*) t_ok ;;
    *) t_fail "$out" ;;
    esac
else
    t_fail "bash is missing"
fi

t_begin "the installed strata reports the version of scripts/version"
t_check test "$("$D/usr/bin/strata" --version)" = "strata $("$SRC/scripts/version")"

t_done
