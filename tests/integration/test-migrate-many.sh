#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Any number of layers: 505 migrations with the default limit (499 layers,
# the kernel stacks 500 lower dirs with the base). Past the limit the
# oldest layers are squashed automatically; no mount ever fails, and a last
# migration sees every file of the 505 in its sandbox.
. "$(dirname "$0")/lib.sh"
need_root
need_program python3
SM=${SYSTEM_MIGRATE:?SYSTEM_MIGRATE is not set}
t_tmpdir
D=$T_TMP/data
M=$T_TMP/migrations
N=505

i=1
while [ $i -le $N ]; do
    d=$M/$(printf '20260106-%03d_l' $(((i - 1) % 999 + 1)))
    [ $i -gt 999 ] && d=$M/$(printf '20260107-%03d_l' $((i - 999)))
    mkdir -p "$d"
    echo "mkdir -p /etc/strata-many; echo $i > /etc/strata-many/f$i" >"$d/install_script.sh"
    i=$((i + 1))
done
mkdir -p "$M/20260108-001_check"
cat >"$M/20260108-001_check/install_script.sh" <<CHECK
n=\$(ls /etc/strata-many | wc -l)
echo "sees \$n files"
[ "\$n" -eq $N ] && [ "\$(cat /etc/strata-many/f1)" = 1 ] && [ "\$(cat /etc/strata-many/f$N)" = $N ]
CHECK

t_begin "$N migrations apply past the kernel's stack limit"
"$SM" --data "$D" --dir "$M" --base / up >"$T_TMP/out" 2>&1
rc=$?
layers=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['layers']))" \
    "$D/system/migrations/metadata.json")
applied=$("$SM" --data "$D" --dir "$M" status --json |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(len(j["applied"]), len(j["pending"]))')
if [ $rc -eq 0 ] && [ "$layers" -le 499 ] && [ "$applied" = "$((N + 1)) 0" ] &&
    grep -q "squashed into one layer" "$T_TMP/out"; then
    t_ok
else
    t_fail "exit $rc, $layers layers, applied/pending $applied: $(tail -n 5 "$T_TMP/out")"
fi

t_begin "the last migration saw all $N files through the stack"
if grep -q "sees $N files" "$T_TMP/out"; then t_ok; else t_fail "$(grep sees "$T_TMP/out")"; fi

t_begin "verify agrees after the automatic squash"
if "$SM" --data "$D" --dir "$M" verify >/dev/null 2>&1; then t_ok; else t_fail "verify failed"; fi

t_done
