#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# strata layer export/import/push/pull: layers as OCI image layers, through
# an OCI layout and through a real registry (docker-registry on a free
# loopback port, TLS off for that host only, in a registries.conf of the
# test's own). The machines of the data dirs are booted with `strata lab
# run --data` and compared from inside. Everything lives in a temp dir.
. "$(dirname "$0")/lib.sh"
need_root
need_program python3
need_program getfattr attr
need_program skopeo skopeo
need_program docker-registry docker-registry
need_program curl curl
SM=${SYSTEM_MIGRATE:?SYSTEM_MIGRATE is not set}
t_tmpdir
# strata's own temp dirs (an OCI layout per push or pull) go below ours, so
# that the ones a killed pull leaves go with it
export TMPDIR="$T_TMP/tmp"
mkdir -p "$TMPDIR"
M=$T_TMP/migrations
A=$T_TMP/a
REG_PID=""
mkdir -p "$M"

cleanup_all() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    t_cleanup
}
trap 'cleanup_all' EXIT
trap 'cleanup_all; exit 130' INT TERM

sm() { d=$1; shift; "$SM" --data "$d" --dir "$M" --base / "$@"; }
layer() { "$STRATA" layer "$@"; }
meta() { cat "$1/system/migrations/metadata.json" 2>/dev/null || echo "no metadata"; }
# What a data dir holds besides its scratch dirs, to compare before/after.
store() { (cd "$1/system" 2>/dev/null && find layers migrations -printf '%p %y %s\n' | sort && meta "$1"); }

mig() {
    mkdir -p "$M/$1"
    printf '%s\n' "$2" >"$M/$1/install_script.sh"
}

# Layer 1: every kind of entry and property; layer 2 deletes and replaces
# over layer 1 and the base.
mig 20260101-001_files '
set -e
mkdir -p /opt/oci-t/dir/sub /opt/oci-t/gone-dir
echo hello > /opt/oci-t/dir/file
chown 123:456 /opt/oci-t/dir/file
chmod 4750 /opt/oci-t/dir/file
setfattr -n user.note -v "a note" /opt/oci-t/dir/file
setfattr -n trusted.strata -v yes /opt/oci-t/dir
ln -s dir/file /opt/oci-t/link
ln /opt/oci-t/dir/file /opt/oci-t/hard
mkfifo -m 0600 /opt/oci-t/fifo
echo long > /opt/oci-t/dir/sub/$(printf "n%.0s" $(seq 1 120))
touch -d "2020-01-02 03:04:05.123456789" /opt/oci-t/dir/sub
printf "x%.0s" $(seq 1 5000) > /opt/oci-t/gone-dir/big
echo motd > /etc/oci-t-motd
rm -rf /etc/skel && mkdir /etc/skel && echo only > /etc/skel/only'
mig 20260101-002_changes '
set -e
rm /etc/oci-t-motd /opt/oci-t/link
rm -rf /opt/oci-t/gone-dir
echo second > /opt/oci-t/second
ln -s /etc/hostname /opt/oci-t/link
setfattr -h -n trusted.strata -v own-link /opt/oci-t/link'

# The view from inside a data dir's machine: listings with modes, owners,
# times and link targets, checksums, xattrs, what is absent.
VIEW='for p in /opt/oci-t /etc/skel; do find $p -printf "%p %y %m %U:%G %T@ %l %s\n" | sort; done
find /opt/oci-t /etc/skel -type f | sort | xargs sha256sum
getfattr -R -d -m - --absolute-names /opt/oci-t 2>/dev/null | grep -v "^$"
echo "own xattrs of the link:"; getfattr -h -d -m - --absolute-names /opt/oci-t/link 2>/dev/null | grep -v "^$"
for f in /etc/oci-t-motd /opt/oci-t/gone-dir /etc/skel/.profile /etc/skel/.bashrc; do
    if [ -e $f ]; then echo "$f present"; else echo "$f absent"; fi; done'
view() { "$STRATA" lab run --data "$1" --base / -- sh -c "$VIEW" 2>&1; }
# The same without the times, for a data dir whose lower layers were
# applied on their own (at another time).
notime() { sed -E 's/ [0-9]+\.[0-9]+ / /'; }

sm "$A" up >"$T_TMP/up.log" 2>&1 || { cat "$T_TMP/up.log"; t_skip_all "the migrations do not apply here"; }
VIEW_A=$(view "$A")
# what the comparisons below must carry: a symlink's own xattr
link_xattr() { echo "$1" | sed -n '/^own xattrs of the link:/,$p' | grep -q '^trusted.strata="own-link"'; }

# ---------------------------------------------------------------------------
t_begin "export --tar: the same layer gives the same bytes twice (two processes)"
layer export 20260101-001_files --data "$A" --tar "$T_TMP/l1.tar" >"$T_TMP/d1" 2>/dev/null &&
    layer export 20260101-001_files --data "$A" --tar "$T_TMP/l1b.tar" >"$T_TMP/d2" 2>/dev/null
d1=$(cut -d' ' -f1 "$T_TMP/d1")
if [ -n "$d1" ] && cmp -s "$T_TMP/l1.tar" "$T_TMP/l1b.tar" &&
    [ "sha256:$(sha256sum <"$T_TMP/l1.tar" | cut -d' ' -f1)" = "$d1" ]; then
    t_ok
else
    t_fail "digests '$d1' / '$(cat "$T_TMP/d2")'"
fi

t_begin "the tar maps whiteouts to .wh. files, opaque dirs to .wh..wh..opq, keeps owners and links"
list=$(tar -tvf "$T_TMP/l1.tar" 2>/dev/null)
list2=$(layer export 20260101-002_changes --data "$A" --tar "$T_TMP/l2.tar" >/dev/null 2>&1 &&
    tar -tf "$T_TMP/l2.tar")
if echo "$list" | grep -q 'etc/skel/.wh..wh..opq' &&
    echo "$list" | grep -q '123/456 .* opt/oci-t/dir/file$' &&
    echo "$list" | grep -q 'opt/oci-t/hard link to opt/oci-t/dir/file' &&
    echo "$list" | grep -q 'opt/oci-t/link -> dir/file' &&
    echo "$list2" | grep -qx 'etc/.wh.oci-t-motd' &&
    echo "$list2" | grep -qx 'opt/oci-t/.wh.gone-dir'; then
    t_ok
else
    t_fail "$list
$list2"
fi

t_begin "push to an OCI layout twice: the same manifest digest"
m1=$(layer push "oci:$T_TMP/layout1:v1" --data "$A" --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest"])')
m2=$(layer push "oci:$T_TMP/layout2:v1" --data "$A" --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest"])')
[ -n "$m1" ] && [ "$m1" = "$m2" ] && t_ok || t_fail "'$m1' and '$m2'"

t_begin "import of the layout into an empty data dir: its machine shows the same root, a symlink's own xattrs too"
B=$T_TMP/b
if out=$(layer import "$T_TMP/layout1" --tag v1 --data "$B" 2>&1); then
    VIEW_B=$(view "$B")
    if [ "$VIEW_A" = "$VIEW_B" ] && echo "$VIEW_B" | grep -q '/etc/oci-t-motd absent' &&
        link_xattr "$VIEW_B"; then
        t_ok
    else
        t_fail "$(printf '%s\n' "$VIEW_A" >"$T_TMP/va"; printf '%s\n' "$VIEW_B" >"$T_TMP/vb"; diff "$T_TMP/va" "$T_TMP/vb")"
    fi
else
    t_fail "$out"
fi

t_begin "the imported data dir: verify --content agrees, status lists the migrations, re-export gives the same digest"
v=$(sm "$B" verify --content 2>&1) && s=$(sm "$B" status 2>&1) &&
    m3=$(layer push "oci:$T_TMP/layout3:v1" --data "$B" --json 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest"])')
if [ "${m3:-}" = "$m1" ] && echo "$s" | grep -q 20260101-002_changes; then
    t_ok
else
    t_fail "verify: $v; status: ${s:-}; digest ${m3:-none} vs $m1"
fi

t_begin "import of a plain tar with --id: the layer's change list is computed"
C=$T_TMP/c
if out=$(layer import "$T_TMP/l1.tar" --id 20260101-001_files --data "$C" --base / 2>&1) &&
    d=$(sm "$C" diff 20260101-001_files 2>&1) && echo "$d" | grep -q 'A /opt/oci-t/dir/file' &&
    echo "$d" | grep -q 'R /etc/skel'; then
    t_ok
else
    t_fail "$out ${d:-}"
fi

t_begin "bad input: an unknown id, a layout that is not one, a tar without --id (nothing changes)"
before=$(store "$B")
layer export 20991231-001_nope --data "$A" --tar "$T_TMP/x.tar" 2>/dev/null; r1=$?
mkdir -p "$T_TMP/notlayout"
e2=$(layer import "$T_TMP/notlayout" --data "$B" 2>&1); r2=$?
layer import "$T_TMP/l1.tar" --data "$B" 2>/dev/null; r3=$?
layer push "not a ref" --data "$A" 2>/dev/null; r4=$?
if [ $r1 = 2 ] && [ $r2 = 1 ] && echo "$e2" | grep -q "not an OCI image layout" && [ $r3 = 2 ] &&
    [ $r4 = 2 ] && [ "$(store "$B")" = "$before" ] && [ ! -e "$T_TMP/x.tar" ]; then
    t_ok
else
    t_fail "exit $r1 $r2 $r3 $r4: $e2"
fi

t_begin "a damaged blob in a layout is refused by digest; the data dir is unchanged"
cp -a "$T_TMP/layout1" "$T_TMP/damaged"
blob=$(python3 - "$T_TMP/damaged" <<'EOF'
import json, sys
d = sys.argv[1]
idx = json.load(open(d + "/index.json"))
m = json.load(open(d + "/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
print(d + "/blobs/sha256/" + m["layers"][1]["digest"][7:])
EOF
)
printf 'X' | dd of="$blob" bs=1 seek=700 conv=notrunc 2>/dev/null
K=$T_TMP/k
sm "$K" up --to 20260101-001_files >/dev/null 2>&1
before=$(store "$K")
e=$(layer import "$T_TMP/damaged" --data "$K" 2>&1); r=$?
if [ $r = 1 ] && echo "$e" | grep -q "damaged" && [ "$(store "$K")" = "$before" ]; then
    t_ok
else
    t_fail "exit $r: $e"
fi

# ---------------------------------------------------------------------------
# The registry, on a free loopback port, plain HTTP for that host only.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T_TMP/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $T_TMP/registry
http:
  addr: 127.0.0.1:$PORT
EOF
printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$PORT" >"$T_TMP/registries.conf"
printf '{"auths": {}}\n' >"$T_TMP/auth.json"
# (the registry reads REGISTRY_* variables as its own settings)
env -u REGISTRY_AUTH_FILE docker-registry serve "$T_TMP/registry.yml" >"$T_TMP/registry.log" 2>&1 </dev/null &
REG_PID=$!
export CONTAINERS_REGISTRIES_CONF="$T_TMP/registries.conf" REGISTRY_AUTH_FILE="$T_TMP/auth.json"
i=0
until curl -s -m 1 "http://127.0.0.1:$PORT/v2/" >/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || break
    sleep 0.1
done
REF=127.0.0.1:$PORT/strata/machine:v1

t_begin "push from data dir A to the registry, pull into an empty data dir B2: the same root, a symlink's own xattrs too"
B2=$T_TMP/b2
if out=$(layer push "$REF" --data "$A" 2>&1) && out=$(layer pull "$REF" --data "$B2" 2>&1); then
    VIEW_B2=$(view "$B2")
    [ "$VIEW_A" = "$VIEW_B2" ] && link_xattr "$VIEW_B2" && t_ok ||
        t_fail "$(printf '%s\n' "$VIEW_A" >"$T_TMP/va"; printf '%s\n' "$VIEW_B2" >"$T_TMP/vb"; diff "$T_TMP/va" "$T_TMP/vb")"
else
    t_fail "$out $(tail -3 "$T_TMP/registry.log")"
fi

t_begin "pull onto a data dir that has part of the stack adds the rest; again adds nothing"
o1=$(layer pull "$REF" --data "$K" --json 2>&1)
o2=$(layer pull "$REF" --data "$K" --json 2>&1)
if echo "$o1" | grep -q '"present": 1' && echo "$o1" | grep -q 20260101-002_changes &&
    echo "$o2" | grep -q '"present": 2' &&
    [ "$(view "$K" | notime)" = "$(echo "$VIEW_A" | notime)" ]; then
    t_ok
else
    t_fail "$o1 / $o2"
fi

t_begin "pull onto a data dir whose applied ids differ is refused naming the first difference"
X=$T_TMP/x
sm "$X" up --to 20260101-001_files >/dev/null 2>&1
mkdir -p "$T_TMP/m2/20260101-002_other"
echo 'echo other > /opt/other' >"$T_TMP/m2/20260101-002_other/install_script.sh"
cp -a "$M/20260101-001_files" "$T_TMP/m2/"
"$SM" --data "$X" --dir "$T_TMP/m2" --base / up >/dev/null 2>&1
before=$(store "$X")
e=$(layer pull "$REF" --data "$X" 2>&1); r=$?
if [ $r = 1 ] && echo "$e" | grep -q "has applied '20260101-002_other' where the image has '20260101-002_changes'" &&
    [ "$(store "$X")" = "$before" ]; then
    t_ok
else
    t_fail "exit $r: $e"
fi

t_begin "a corrupted blob in the registry is refused by digest; the data dir is unchanged"
E=$T_TMP/e
sm "$E" up --to 20260101-001_files >/dev/null 2>&1
digest=$(python3 - "$T_TMP/layout1" <<'EOF'
import json, sys
d = sys.argv[1]
idx = json.load(open(d + "/index.json"))
m = json.load(open(d + "/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
print(m["layers"][1]["digest"][7:])
EOF
)
rblob="$T_TMP/registry/docker/registry/v2/blobs/sha256/$(echo "$digest" | cut -c1-2)/$digest/data"
cp "$rblob" "$T_TMP/blob.good"
printf 'X' | dd of="$rblob" bs=1 seek=700 conv=notrunc 2>/dev/null
before=$(store "$E")
e=$(layer pull "$REF" --data "$E" 2>&1); r=$?
cp "$T_TMP/blob.good" "$rblob"
if [ $r = 1 ] && echo "$e" | grep -qi "digest" && [ "$(store "$E")" = "$before" ]; then
    t_ok
else
    t_fail "exit $r: $e"
fi

# A pull stopped at a step of its commit protocol and killed there with
# SIGKILL; verify repairs what it left and the stack is the one before.
kill_at() {
    step=$1
    before=$(store "$E")
    STRATA_TEST_STOP_AT=$step "$STRATA" layer pull "$REF" --data "$E" >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ "$(ps -o stat= -p $pid 2>/dev/null | cut -c1)" != T ] && [ $i -lt 300 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    kill -KILL $pid
    wait $pid 2>/dev/null
    v=$(sm "$E" verify 2>&1); vr=$?
    after=$(store "$E")
}
if [ "${STRATA_TEST_HOOKS:-0}" = 1 ]; then
    for step in adopt-staged adopt-renamed; do
        t_begin "a pull killed (SIGKILL) at $step leaves the data dir as it was; verify agrees"
        kill_at $step
        if [ $vr = 0 ] && [ "$after" = "$before" ] && [ $i -lt 300 ]; then
            t_ok
        else
            t_fail "verify $vr: $v; $(echo "$before" >"$T_TMP/sb"; echo "$after" >"$T_TMP/sa"; diff "$T_TMP/sb" "$T_TMP/sa")"
        fi
    done
    t_begin "a pull killed (SIGKILL) after its commit point: verify finishes it, the stack is whole"
    kill_at adopt-committed
    if [ $vr = 0 ] && meta "$E" | grep -q 20260101-002_changes &&
        [ "$(view "$E" | notime)" = "$(echo "$VIEW_A" | notime)" ]; then
        t_ok
    else
        t_fail "verify $vr: $v"
    fi
else
    t_begin "a pull killed mid-way (needs -Dtest_hooks=true) # SKIP not a test build"
    t_ok
fi

# ---------------------------------------------------------------------------
# strata image build, booted by podman (a private store, runc, lowered
# ulimits: lib-podman.sh). The base is a small root of busybox and s6 with
# their libraries, so the image's init layer must bring overlayfs-init's.
. "$(dirname "$0")/lib-podman.sh"

# mini_root DIR: busybox, s6 and the libraries they load, as on the host.
mini_root() {
    r=$1
    mkdir -p "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev" "$r/run" "$r/root" "$r/home" \
        "$r/var/log" "$r/usr/bin" "$r/usr/sbin"
    for l in bin sbin lib lib64; do
        if [ -L /$l ]; then ln -s "$(readlink /$l)" "$r/$l"; else mkdir -p "$r/$l"; fi
    done
    cp /bin/busybox "$r/usr/bin/busybox"
    for a in sh cat echo sleep ls mkdir rm; do ln -s busybox "$r/usr/bin/$a"; done
    for p in s6-svscan s6-supervise s6-svstat s6-svscanctl; do
        p=$(command -v $p) || return 1
        cp "$p" "$r/usr/bin/"
        for lib in $(ldd "$p" | grep -o '/[^ ]*'); do
            d=$(readlink -f "$(dirname "$lib")")
            mkdir -p "$r$d"
            [ -e "$r$d/$(basename "$lib")" ] || cp -L "$lib" "$r$d/"
        done
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
}

if command -v podman >/dev/null 2>&1 && command -v s6-svscan >/dev/null 2>&1 &&
    { [ -f /sys/fs/cgroup/cgroup.controllers ] || command -v runc >/dev/null 2>&1; }; then
    podman_private "$T_TMP/podman"
    cleanup_all() {
        [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
        podman_private_clean
        t_cleanup
    }
    MINI=$T_TMP/mini
    MM=$T_TMP/mm
    I=$T_TMP/i
    mini_root "$MINI"
    mkdir -p "$MM/20260201-001_app/services/hello"
    printf 'set -e\nmkdir -p /opt/app\necho migrated > /opt/app/hello\n' \
        >"$MM/20260201-001_app/install_script.sh"
    printf '#!/bin/sh\necho up > /run/hello-up\nexec sleep 1000\n' \
        >"$MM/20260201-001_app/services/hello/run"
    chmod +x "$MM/20260201-001_app/services/hello/run"

    # boot ID NAME: runs the image ID as a container (its /data a tmpfs),
    # waits for its hello service and sets hello, marker (/etc/base-marker,
    # or "none"), svc and pid1 from inside it
    boot() {
        c=strata-oci-$$-$2
        hello="" marker="" svc="" pid1=""
        out=$(pm run -d --privileged --network none --tmpfs /data --name "$c" "$1" 2>&1) || return 1
        i=0
        while ! pm exec "$c" cat /run/hello-up >/dev/null 2>&1 && [ $i -lt 100 ]; do
            i=$((i + 1))
            sleep 0.1
        done
        hello=$(pm exec "$c" cat /opt/app/hello 2>&1)
        marker=$(pm exec "$c" sh -c 'cat /etc/base-marker 2>/dev/null || echo none' 2>&1)
        svc=$(pm exec "$c" s6-svstat /etc/s6/hello 2>&1)
        pid1=$(pm exec "$c" cat /proc/1/cmdline 2>&1 | tr '\0' ' ')
        out="$(pm logs "$c" 2>&1 | tail -3)"
        pm rm -f -t 0 "$c" >/dev/null 2>&1
        return 0
    }
    # What a container of the image boots: the migrated files, the service up, PID 1.
    booted_ok() {
        [ "$hello" = migrated ] && echo "$svc" | grep -q '^up ' && echo "$pid1" | grep -q overlayfs-init
    }
    booted() { echo "hello: $hello; base marker: $marker; hello service: $svc; pid 1: $pid1; $out"; }
    # The config of the image ID as "Entrypoint|Cmd|Env" (JSON lists).
    config_of() {
        pm image inspect --format '{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{json .Config.Env}}' "$1" 2>&1
    }
    # strata's temp dirs left in $TMPDIR
    leftovers() { find "$TMPDIR" -mindepth 1 -maxdepth 1 -name 'strata-*' | sort; }

    IMGREF=127.0.0.1:$PORT/strata/image:v1
    t_begin "image build, pushed to the registry: podman run of it boots the migrated machine: its files, its s6 service up"
    if out=$("$SM" --data "$I" --dir "$MM" --base "$MINI" up 2>&1) &&
        out=$("$STRATA" image build --data "$I" --base "$MINI" "$IMGREF" 2>&1) &&
        out=$(pm pull -q "$IMGREF" 2>&1) && id=$(echo "$out" | tail -1) && boot "$id" dir; then
        booted_ok && [ "$marker" = none ] && t_ok || t_fail "$(booted)"
    else
        t_fail "$out"
    fi

    # A base image of another origin: the mini root and a file only it
    # has, imported by podman with an Env and a Cmd of its own, pushed to
    # the registry (podman compresses its layer) and to an OCI layout.
    MINIB=$T_TMP/minib
    BASEREF=127.0.0.1:$PORT/strata/base:v1
    cp -a "$MINI" "$MINIB"
    echo from-base >"$MINIB/etc/base-marker"
    base_ok=0
    if tar -C "$MINIB" -cf - . | pm import --change 'ENV STRATA_BASE=mini' --change 'CMD ["/bin/sh"]' - \
        localhost/strata-base:v1 >"$T_TMP/base.log" 2>&1 &&
        pm push -q localhost/strata-base:v1 "docker://$BASEREF" >>"$T_TMP/base.log" 2>&1 &&
        pm push -q localhost/strata-base:v1 "oci:$T_TMP/base-layout:b" >>"$T_TMP/base.log" 2>&1; then
        base_ok=1
    fi

    ONREF=127.0.0.1:$PORT/strata/on-base:v1
    t_begin "image build --base-image REF (a registry): podman run shows the base's files and the migrated machine; entrypoint overlayfs-init, the base's Env kept, not its Cmd"
    if [ $base_ok = 1 ] && before=$(leftovers) &&
        out=$("$STRATA" image build --data "$I" --base-image "$BASEREF" "$ONREF" 2>&1) &&
        out=$(pm pull -q "$ONREF" 2>&1) && id=$(echo "$out" | tail -1) && boot "$id" reg; then
        cfg=$(config_of "$id")
        if booted_ok && [ "$marker" = from-base ] && [ "$(leftovers)" = "$before" ] &&
            [ "${cfg%%|*}" = '["/usr/local/sbin/overlayfs-init"]' ] &&
            echo "$cfg" | cut -d'|' -f2 | grep -qx 'null' &&
            echo "$cfg" | cut -d'|' -f3 | grep -q '"STRATA_BASE=mini"' &&
            echo "$cfg" | cut -d'|' -f3 | grep -q '"PATH='; then
            t_ok
        else
            t_fail "$(booted); config $cfg; left: $(leftovers)"
        fi
    else
        t_fail "$out $(cat "$T_TMP/base.log")"
    fi

    # (podman names an image pulled from oci:DIR after DIR, which must be
    # lowercase: the layout goes through the registry to podman)
    t_begin "image build --base-image oci:DIR:TAG into oci:DIR: the base's layers first, byte for byte, then the init and strata layers; it boots"
    if [ $base_ok = 1 ] &&
        out=$("$STRATA" image build --data "$I" --base-image "oci:$T_TMP/base-layout:b" \
            "oci:$T_TMP/on-base-layout:v1" 2>&1) &&
        layers=$(python3 - "$T_TMP/base-layout" "$T_TMP/on-base-layout" <<'EOF'
import json, sys
def image(d):
    idx = json.load(open(d + "/index.json"))
    m = json.load(open(d + "/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
    c = json.load(open(d + "/blobs/sha256/" + m["config"]["digest"][7:]))
    return [l["digest"] for l in m["layers"]], c
base, _ = image(sys.argv[1])
built, c = image(sys.argv[2])
ok = (built[:len(base)] == base and len(built) == len(base) + 2 and
      c["strata"]["base_layers"] == len(base) + 1 and
      c["config"]["Entrypoint"] == ["/usr/local/sbin/overlayfs-init"])
print("ok" if ok else "base %s, built %s, config %s" % (base, built, c["config"]))
EOF
        ) && [ "$layers" = ok ] &&
        out=$(skopeo --registries-conf "$CONTAINERS_REGISTRIES_CONF" copy -q \
            "oci:$T_TMP/on-base-layout:v1" "docker://$ONREF-oci" 2>&1) &&
        out=$(pm pull -q "$ONREF-oci" 2>&1) && id=$(echo "$out" | tail -1) &&
        boot "$id" oci && booted_ok && [ "$marker" = from-base ]; then
        t_ok
    else
        t_fail "${layers:-} $out $(booted)"
    fi

    t_begin "image build with a bad --base-image: a clear error, nothing pushed or written, no temp dir left"
    before=$(leftovers)
    e1=$("$STRATA" image build --data "$I" --base-image "not a ref" "oci:$T_TMP/bad1:v1" 2>&1); r1=$?
    e2=$("$STRATA" image build --data "$I" --base-image "127.0.0.1:$PORT/strata/nope:v1" \
        "127.0.0.1:$PORT/strata/bad:v1" 2>&1); r2=$?
    e3=$("$STRATA" image build --data "$I" --base-image "oci:$T_TMP/no-layout:b" \
        "oci:$T_TMP/bad3:v1" 2>&1); r3=$?
    bad=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/strata/bad/manifests/v1")
    if [ $r1 = 2 ] && echo "$e1" | grep -q "invalid --base-image 'not a ref'" &&
        [ $r2 = 1 ] && echo "$e2" | grep -q "cannot use the base image '127.0.0.1:$PORT/strata/nope:v1'" &&
        [ $r3 = 1 ] && echo "$e3" | grep -q "cannot use the base image 'oci:$T_TMP/no-layout:b'" &&
        [ ! -e "$T_TMP/bad1" ] && [ ! -e "$T_TMP/bad3" ] && [ ! -e "$T_TMP/no-layout" ] &&
        [ "$bad" = 404 ] && [ "$(leftovers)" = "$before" ]; then
        t_ok
    else
        t_fail "exit $r1 $r2 $r3 (registry: $bad): $e1 / $e2 / $e3; left: $(leftovers)"
    fi

    t_begin "the built image's strata layers pull into an empty data dir (its base layers are skipped)"
    if out=$("$STRATA" layer pull "$IMGREF" --data "$T_TMP/i2" --json 2>&1) &&
        echo "$out" | grep -q 20260201-001_app &&
        [ "$(cat "$T_TMP/i2/system/layers/20260201-001_app/fs/opt/app/hello")" = migrated ]; then
        t_ok
    else
        t_fail "$out"
    fi
else
    t_begin "image build and podman run # SKIP podman, runc or s6 is missing"
    t_ok
fi

t_done
