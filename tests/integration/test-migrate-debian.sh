#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real package install on a Debian base: a debootstrap'ed minbase root
# (built once, cached in the build dir) is the base; a migration installs
# cron with apt-get, ships an s6 service running `cron -f` and declares
# cron's spool as state. Then `system-migrate install hello`. Then the
# postgres scenario: one migration installs postgresql, the next ships its
# s6 service and declares /var/lib/postgresql as state (seeded from the
# layer below); two `strata lab test` boots keep a row.
. "$(dirname "$0")/lib.sh"
need_root
not_in_image "its migrations apt-get packages from the Debian archive, and the container has no network (podman run --network none)"
need_program python3
SM=${SYSTEM_MIGRATE:?SYSTEM_MIGRATE is not set}
need_debian_base
t_tmpdir
D=$T_TMP/data
M=$T_TMP/migrations
sm() { "$SM" --data "$D" --dir "$M" --base "$BASE" "$@"; }

mkdir -p "$M/20260104-001_add_cron/services/cron"
cat >"$M/20260104-001_add_cron/install_script.sh" <<'S'
set -eu
apt-get install -y --no-install-recommends cron
# the daemon must not have been started by the package scripts
for p in /proc/[0-9]*; do
    if [ "$(cat "$p/comm" 2>/dev/null)" = cron ]; then echo "cron was started" >&2; exit 1; fi
done
S
echo /var/spool/cron >"$M/20260104-001_add_cron/state"
printf '#!/bin/sh\nexec cron -f\n' >"$M/20260104-001_add_cron/services/cron/run"
chmod +x "$M/20260104-001_add_cron/services/cron/run"
echo 3 >"$M/20260104-001_add_cron/services/cron/timeout-kill"

t_begin "apt-get install of a daemon in a migration succeeds"
if sm up >"$T_TMP/up.log" 2>&1; then
    t_ok
else
    t_fail "$(tail -n 15 "$T_TMP/up.log")"
fi
L=$D/system/layers/20260104-001_add_cron/fs

t_begin "the package's files and /var/lib/dpkg are in the layer"
if [ -x "$L/usr/sbin/cron" ] && [ -f "$L/var/lib/dpkg/info/cron.list" ] &&
    grep -q '^Package: cron$' "$L/var/lib/dpkg/status" &&
    sm diff 20260104-001_add_cron | grep -q '^A /usr/sbin/cron$' &&
    sm diff 20260104-001_add_cron | grep -q '^M /var/lib/dpkg/status$' &&
    [ ! -e "$BASE/usr/sbin/cron" ]; then
    t_ok
else
    t_fail "$(sm diff 20260104-001_add_cron | head -20)"
fi

t_begin "the service definition lands in the layer under /etc/s6"
if [ -x "$L/etc/s6/cron/run" ] && grep -q 'cron -f' "$L/etc/s6/cron/run" &&
    [ "$(cat "$L/etc/s6/cron/timeout-kill")" = 3 ] && [ -d "$D/state/services/cron" ]; then
    t_ok
else
    t_fail "$(find "$L/etc/s6" 2>&1)"
fi

t_begin "the state dir lands in /data/state, the layer keeps the mount point"
if [ -d "$D/state/var/spool/cron/crontabs" ] && [ -d "$L/var/spool/cron" ] &&
    [ -z "$(ls -A "$L/var/spool/cron")" ] &&
    python3 -c 'import json,sys; assert "/var/spool/cron" in json.load(open(sys.argv[1]))["state_paths"]' \
        "$D/system/migrations/metadata.json"; then
    t_ok
else
    t_fail "state: $(find "$D/state/var/spool" 2>&1 | head); layer: $(ls -la "$L/var/spool/cron" 2>&1)"
fi

t_begin "no policy-rc.d is left in the layer"
if [ ! -e "$L/usr/sbin/policy-rc.d" ] && [ ! -e "$BASE/usr/sbin/policy-rc.d" ]; then
    t_ok
else
    t_fail "policy-rc.d found"
fi

t_begin "system-migrate install PKG creates and applies a migration"
if sm install hello >"$T_TMP/install.log" 2>&1; then
    id=$(ls "$M" | grep '_install_hello$')
    if [ -n "$id" ] && [ -x "$D/system/layers/$id/fs/usr/bin/hello" ] &&
        grep -q '^Package: hello$' "$D/system/layers/$id/fs/var/lib/dpkg/status" &&
        grep -q '^Package: cron$' "$D/system/layers/$id/fs/var/lib/dpkg/status" &&
        sm status --json | python3 -c "import json,sys; j=json.load(sys.stdin); assert j['applied'][-1]['id']=='$id' and not j['pending']"; then
        t_ok
    else
        t_fail "id '$id': $(tail -n 5 "$T_TMP/install.log")"
    fi
else
    t_fail "$(tail -n 15 "$T_TMP/install.log")"
fi

t_begin "a package that does not exist fails the migration and leaves nothing"
before=$(cat "$D/system/migrations/metadata.json")
sm install strata-no-such-package >"$T_TMP/bad.log" 2>&1
rc=$?
if [ $rc -eq 1 ] && [ "$before" = "$(cat "$D/system/migrations/metadata.json")" ] &&
    ! ls -a "$D/system/layers" | grep -q '^\.tmp-'; then
    t_ok
else
    t_fail "exit $rc: $(tail -n 5 "$T_TMP/bad.log")"
fi

# ---------------------------------------------------------------------------
# A state path declared after the package that fills it (seeding)
P=$T_TMP/pg-migrations
mkdir -p "$P/20260107-001_postgresql" "$P/20260107-002_pg_service/services/postgres"
cat >"$P/20260107-001_postgresql/install_script.sh" <<'S'
set -eu
apt-get install -y --no-install-recommends postgresql s6
apt-get clean
S
cat >"$P/20260107-002_pg_service/install_script.sh" <<'S'
set -eu
# the cluster the package created is visible here, through the state path
ls /var/lib/postgresql/*/main/PG_VERSION
S
echo /var/lib/postgresql >"$P/20260107-002_pg_service/state"
cat >"$P/20260107-002_pg_service/services/postgres/run" <<'S'
#!/bin/sh
v=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql
exec s6-setuidgid postgres /usr/lib/postgresql/$v/bin/postgres -D /var/lib/postgresql/$v/main \
    -c config_file=/etc/postgresql/$v/main/postgresql.conf -c listen_addresses= 2>&1
S
chmod +x "$P/20260107-002_pg_service/services/postgres/run"
PD=$T_TMP/pg-data
pg() { "$SM" --data "$PD" --dir "$P" --base "$BASE" "$@"; }
# boot SQL: a machine of the data dir (s6-svscan as init) runs psql once
# postgres answers.
boot() {
    "$STRATA" lab test --data "$PD" --base "$BASE" --net none \
        --services "$STRATA_SOURCE_ROOT/tests/image/s6" -- sh -c '
        for i in $(seq 150); do s6-setuidgid postgres psql -Atc "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
        s6-setuidgid postgres psql -v ON_ERROR_STOP=1 -Atc "$0" >/run/psql.out; rc=$?
        sed "s/^/psql: /" /run/psql.out; exit $rc' "$1" >"$T_TMP/boot.out" 2>&1
    rc=$?
    sed -n "s/^psql: //p" "$T_TMP/boot.out"
    return $rc
}

t_begin "postgres: a later migration declares its data dir as state, which is seeded from the layer below"
if pg up >"$T_TMP/pg.log" 2>&1 && grep -q "seeding '$PD/state/var/lib/postgresql'" "$T_TMP/pg.log" &&
    ls "$PD"/state/var/lib/postgresql/*/main/PG_VERSION >/dev/null 2>&1; then
    t_ok
else
    t_fail "$(tail -n 15 "$T_TMP/pg.log")"
fi

t_begin "postgres: two lab test boots answer 'select 1' and keep a row written in the first"
if [ -z "${STRATA:-}" ]; then
    t_fail "STRATA is not set"
else
    one=$(boot "create table kept (x int); insert into kept values (42); select 1")
    a=$?
    two=$(boot "select x from kept")
    b=$?
    if [ $a -eq 0 ] && [ $b -eq 0 ] && [ "$(echo "$one" | tail -n 1)" = 1 ] && [ "$two" = 42 ]; then
        t_ok
    else
        t_fail "first boot $a: $one / second boot $b: $two"
    fi
fi

t_done
