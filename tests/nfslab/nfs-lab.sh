#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The NFS lab's environment: run by `strata lab nfs start-env|test|stop-env`,
# which checks the options (all required, no defaults here: they live at the
# top of the Makefile) and execs this script with them.
#
#   nfs-lab.sh start-env --work-dir DIR --nfsd PATH --strata PATH --image NAME
#       --tag TAG --port P --server container|lab --export-mode rw|ro
#       --client vm|none --vm-dir DIR --vm-image NAME --cidata NAME
#   nfs-lab.sh test  (the same) --testcase LIST --runner PATH
#   nfs-lab.sh stop-env --work-dir DIR
#   nfs-lab.sh seed-iso --vm-dir DIR --cidata NAME      (the NoCloud seed only)
#   nfs-lab.sh wait-marker FILE MARKER SECONDS [PID]    (the console wait only)
#
# The server: strata-nfsd in a podman container (image NAME:TAG imported
# from the binary and the libraries ldd names, podman state under
# WORK/podman, published on 127.0.0.1:P) or, with --server lab, in a strata
# lab machine on 127.0.0.1:P. It exports /export (WORK/export on the host),
# rw or ro. The client: a strata vm instance provisioned by the NoCloud seed
# VM_DIR/CIDATA, which prints NFSTEST_VM_READY on its serial console.
#
# Exit status: 0 success (test: every case passed), 1 failure, 2 usage.
set -u

MARKER=NFSTEST_VM_READY
CONTAINER=strata-nfslab

die() {
    echo "nfs-lab: $*" >&2
    exit 1
}

usage() {
    echo "nfs-lab: $*" >&2
    exit 2
}

[ $# -ge 1 ] || usage "missing action: start-env, test, stop-env"
ACTION=$1
shift

# pid_alive PID: running, and not a zombie its parent has yet to reap.
pid_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}

# wait_marker FILE MARKER SECONDS [PID]: waits for MARKER on a line of FILE
# (a serial console log); fails, showing the last console lines, when it does
# not come in time, when PID (the VM) exits first, or when the console says
# provisioning failed (a line starting MARKER's prefix + _FAILED, e.g.
# NFSTEST_VM_FAILED, or strata vm's "cloud-init: failed").
wait_marker() {
    file=$1 marker=$2 secs=$3 pid=${4:-}
    end=$(($(date +%s) + secs))
    while :; do
        # The marker on a line of its own (a serial console ends lines in CR LF).
        if [ -f "$file" ] && tr -d '\r' <"$file" | grep -qx "$marker"; then
            return 0
        fi
        # Provisioning that reports its own failure ends the wait at once.
        if [ -f "$file" ] && tr -d '\r' <"$file" | grep -q "^${marker%_*}_FAILED\|^strata-vm: cloud-init: failed"; then
            echo "nfs-lab: the VM's provisioning failed; its last console lines:" >&2
            tail -n 20 "$file" 2>/dev/null | sed 's/^/  | /' >&2
            return 1
        fi
        if [ -n "$pid" ] && ! pid_alive "$pid"; then
            echo "nfs-lab: the VM exited before printing $marker; its last console lines:" >&2
            tail -n 20 "$file" 2>/dev/null | sed 's/^/  | /' >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$end" ]; then
            echo "nfs-lab: no $marker on the VM's console after ${secs}s; its last console lines:" >&2
            tail -n 20 "$file" 2>/dev/null | sed 's/^/  | /' >&2
            return 1
        fi
        sleep 0.5
    done
}

if [ "$ACTION" = wait-marker ]; then
    [ $# -ge 3 ] || usage "wait-marker FILE MARKER SECONDS [PID]"
    wait_marker "$@"
    exit $?
fi

WORK="" NFSD="" STRATA="" IMAGE="" TAG="" PORT="" SERVER="" EXPORT_MODE=""
CLIENT="" VM_DIR="" VM_IMAGE="" CIDATA="" TESTCASE="" RUNNER=""
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage "option '$1' needs a value"
    case $1 in
    --work-dir) WORK=$2 ;;
    --nfsd) NFSD=$2 ;;
    --strata) STRATA=$2 ;;
    --image) IMAGE=$2 ;;
    --tag) TAG=$2 ;;
    --port) PORT=$2 ;;
    --server) SERVER=$2 ;;
    --export-mode) EXPORT_MODE=$2 ;;
    --client) CLIENT=$2 ;;
    --vm-dir) VM_DIR=$2 ;;
    --vm-image) VM_IMAGE=$2 ;;
    --cidata) CIDATA=$2 ;;
    --testcase) TESTCASE=$2 ;;
    --runner) RUNNER=$2 ;;
    *) usage "unknown option '$1'" ;;
    esac
    shift 2
done

# need VAR:option...: every one given.
need() {
    for spec in "$@"; do
        eval "val=\${${spec%%:*}}"
        [ -n "$val" ] || usage "$ACTION needs --${spec#*:}"
    done
}

# --- the NoCloud seed -------------------------------------------------------

# provision_script: what the seed's cloud-init runs last in the guest: the
# NFS client's kernel modules (the image carries them in
# /usr/lib/strata/modules; it has no module tree for modprobe), the checks,
# then the marker on the serial console. The marker is assembled at run
# time so that no echo of the script can fake it.
provision_script() {
    cat <<'EOF'
#!/bin/sh
# NFS lab provisioning: the client's modules and tools, then the ready marker.
mkdir -p /mnt/nfstest
for m in NFS_MODULES; do
    grep -q "^$m " /proc/modules || insmod "/usr/lib/strata/modules/$m.ko" 2>/dev/null
done
missing=""
for p in mount.nfs python3 tcpdump; do
    command -v "$p" >/dev/null 2>&1 || [ -x "/sbin/$p" ] || [ -x "/usr/sbin/$p" ] || missing="$missing $p"
done
grep -qw nfs /proc/filesystems || missing="$missing nfs(kernel)"
if [ -n "$missing" ]; then
    printf 'NFSTEST_VM_FAILED: missing%s\n' "$missing" >/dev/ttyS0
    exit 1
fi
printf 'NFSTEST_%s\n' VM_READY >/dev/ttyS0
EOF
}

# The kernel modules of the NFS client, in load order.
NFS_MODULES="netfs fscache sunrpc grace lockd nfs_acl nfs nfsv3"

# seed_iso: VM_DIR/CIDATA, a NoCloud seed (volume label cidata) with the
# lab's user-data and meta-data, and the ssh key pair the host logs in with.
# cloud-init in the guest (strata vm's cloud-init service) installs the key
# for root, writes the provisioning script and runs it. Only the modules
# the seed uses run: each costs seconds of Python under TCG.
seed_iso() {
    mkdir -p "$VM_DIR/seed" || die "cannot make '$VM_DIR/seed'"
    if [ ! -f "$VM_DIR/id_ed25519" ]; then
        command -v ssh-keygen >/dev/null || die "ssh-keygen is missing (Debian package openssh-client)"
        ssh-keygen -q -t ed25519 -N '' -C strata-nfslab -f "$VM_DIR/id_ed25519" ||
            die "cannot make an ssh key in '$VM_DIR'"
    fi
    key=$(cat "$VM_DIR/id_ed25519.pub")
    id="nfstest-$(date +%s)-$$"
    provision_script | sed "s/NFS_MODULES/$NFS_MODULES/" >"$VM_DIR/seed/provision.sh"
    cat >"$VM_DIR/seed/meta-data" <<EOF
instance-id: $id
local-hostname: nfstest
EOF
    {
        cat <<EOF
#cloud-config
hostname: nfstest
disable_root: false
users:
  - name: root
    lock_passwd: true
    ssh_authorized_keys:
      - $key
write_files:
  - path: /usr/local/sbin/nfstest-provision
    permissions: "0755"
    content: |
EOF
        sed 's/^/      /' "$VM_DIR/seed/provision.sh"
        cat <<EOF
runcmd:
  - [/usr/local/sbin/nfstest-provision]
cloud_init_modules: [write_files, set_hostname, update_hostname, users_groups, ssh]
cloud_config_modules: [runcmd]
cloud_final_modules: [scripts_user]
EOF
    } >"$VM_DIR/seed/user-data"
    rm -f "$VM_DIR/$CIDATA"
    if command -v genisoimage >/dev/null; then
        genisoimage -quiet -output "$VM_DIR/$CIDATA" -volid cidata -joliet -rock \
            "$VM_DIR/seed/user-data" "$VM_DIR/seed/meta-data" ||
            die "genisoimage cannot write '$VM_DIR/$CIDATA'"
    elif command -v xorriso >/dev/null; then
        xorriso -as mkisofs -quiet -output "$VM_DIR/$CIDATA" -volid cidata -joliet -rock \
            "$VM_DIR/seed/user-data" "$VM_DIR/seed/meta-data" 2>/dev/null ||
            die "xorriso cannot write '$VM_DIR/$CIDATA'"
    else
        die "no ISO tool: install genisoimage (or xorriso)"
    fi
}

if [ "$ACTION" = seed-iso ]; then
    need VM_DIR:vm-dir CIDATA:cidata
    seed_iso
    echo "nfs-lab: seed $VM_DIR/$CIDATA"
    exit 0
fi

# --- the server ---------------------------------------------------------------

need WORK:work-dir
mkdir -p "$WORK" || die "cannot make the work dir '$WORK'"
WORK=$(cd "$WORK" && pwd)
STATE="$WORK/env"

# podman with its own store, config and tmp dir under WORK: the host's
# store is never touched. runc where cgroups are not pure v2 (crun refuses
# them), lowered default ulimits where raising RLIMIT_NOFILE is not allowed.
pm() {
    CONTAINERS_CONF="$WORK/podman/containers.conf" podman --root "$WORK/podman/root" \
        --runroot "$WORK/podman/runroot" ${PM_RUNTIME:+--runtime "$PM_RUNTIME"} "$@"
}

podman_setup() {
    command -v podman >/dev/null || die "podman is missing (Debian package podman)"
    PM_RUNTIME=""
    if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
        command -v runc >/dev/null || die "runc is missing (Debian package runc): crun refuses hybrid cgroups"
        PM_RUNTIME=runc
    fi
    mkdir -p "$WORK/podman/tmp"
    ulimits=""
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && ! (ulimit -Hn $((hard + 1))) 2>/dev/null; then
        n=$((hard < 1024 ? hard : 1024))
        ulimits="default_ulimits = [\"nofile=$n:$n\", \"nproc=1024:1024\"]"
    fi
    cat >"$WORK/podman/containers.conf" <<EOF
[containers]
$ulimits

[engine]
tmp_dir = "$WORK/podman/tmp"
events_logger = "none"
EOF
}

# image_build: IMAGE:TAG from the strata-nfsd binary and what ldd names, on
# an otherwise empty root, through podman import (no registry). Rebuilt when
# the binary changed since the last import.
image_build() {
    ref="localhost/$IMAGE:$TAG"
    sum=$(sha256sum "$NFSD" | cut -d' ' -f1)
    if pm image exists "$ref" 2>/dev/null && [ "$(cat "$WORK/image.sum" 2>/dev/null)" = "$sum" ]; then
        echo "nfs-lab: image $ref is up to date"
        return 0
    fi
    echo "nfs-lab: building image $ref from $NFSD"
    root="$WORK/image-root"
    rm -rf "$root"
    mkdir -p "$root/usr/sbin" "$root/export" "$root/state" "$root/etc" "$root/tmp" || return 1
    cp "$NFSD" "$root/usr/sbin/strata-nfsd" || return 1
    libs=$(ldd "$NFSD" | grep -o '/[^ ]*') || die "ldd cannot read '$NFSD'"
    for l in $libs; do
        mkdir -p "$root$(dirname "$l")" && cp -L "$l" "$root$l" || return 1
    done
    echo "root:x:0:0:root:/:/usr/sbin/strata-nfsd" >"$root/etc/passwd"
    echo "root:x:0:" >"$root/etc/group"
    pm rmi -f "$ref" >/dev/null 2>&1
    tar -C "$root" -c . | pm import -q - "$ref" >/dev/null || die "podman import of $ref failed"
    rm -rf "$root"
    echo "$sum" >"$WORK/image.sum"
}

# exports_file PATH CLIENT [OPTIONS]: the one export, rw or ro.
exports_file() {
    echo "/export $2($EXPORT_MODE,no_root_squash${3:+,$3})" >"$1"
}

port_open() { # port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
    python3 -c 'import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
except OSError:
    sys.exit(1)' "$1"
}

# wait_listening LOGCMD: the server prints "listening on" when ready.
wait_listening() {
    i=0
    while [ $i -lt 100 ]; do
        if eval "$1" 2>/dev/null | grep -q '^listening on'; then
            port_open "$PORT" && return 0
        fi
        i=$((i + 1))
        sleep 0.2
    done
    return 1
}

server_start() {
    [ -x "$NFSD" ] || die "strata-nfsd '$NFSD' is missing: run 'make build' first"
    mkdir -p "$WORK/export" "$WORK/server" || die "cannot make '$WORK/export'"
    chmod 0777 "$WORK/export"
    if port_open "$PORT"; then
        die "port 127.0.0.1:$PORT is taken: stop what listens there or pick another NFS_PORT"
    fi
    case $SERVER in
    container)
        podman_setup
        image_build || die "cannot build the image root under '$WORK'"
        mkdir -p "$WORK/server/state"
        # Published ports arrive through the container network's address,
        # not loopback: the export admits any client; only 127.0.0.1:PORT
        # of the host reaches it. And insecure: QEMU's user networking makes
        # the guest's connection again from an ordinary port of the host
        # (a reserved port cannot be required), and through the container
        # network the server cannot ask the socket's owner as it does for
        # the local peers of SERVER=lab. open_by_handle_at needs
        # DAC_READ_SEARCH.
        exports_file "$WORK/server/exports" '*' insecure
        echo "nfs-lab: starting $CONTAINER ($IMAGE:$TAG) on 127.0.0.1:$PORT, export /export $EXPORT_MODE"
        pm run -d --name "$CONTAINER" --cap-add DAC_READ_SEARCH \
            -p "127.0.0.1:$PORT:$PORT" \
            -v "$WORK/export:/export" -v "$WORK/server/state:/state" \
            -v "$WORK/server/exports:/etc/exports:ro" \
            "localhost/$IMAGE:$TAG" /usr/sbin/strata-nfsd --listen "0.0.0.0:$PORT" \
            --state-dir /state --exports /etc/exports >/dev/null ||
            die "podman cannot start $CONTAINER"
        echo "SERVER=container" >>"$STATE"
        if ! wait_listening "pm logs $CONTAINER"; then
            echo "nfs-lab: strata-nfsd did not come up in the container; its log:" >&2
            pm logs "$CONTAINER" 2>&1 | tail -n 20 | sed 's/^/  | /' >&2
            return 1
        fi
        ;;
    lab)
        [ -x "$STRATA" ] || die "strata '$STRATA' is missing"
        # insecure: QEMU's user networking makes the guest's connection
        # again from an ordinary port; the peer is local, so strata-nfsd
        # holds any other local user to their own uid.
        exports_file "$WORK/server/exports" 127.0.0.1 insecure
        mkdir -p "$WORK/server/state"
        echo "nfs-lab: starting strata-nfsd in a strata lab machine on 127.0.0.1:$PORT, export /export $EXPORT_MODE"
        setsid "$STRATA" lab run --ephemeral --hostname strata-nfslab \
            --bind "$WORK/export:/export" --bind "$WORK/server:/run/nfslab" \
            --bind "$(dirname "$NFSD"):/run/nfslab-bin:ro" -- \
            "/run/nfslab-bin/$(basename "$NFSD")" --listen "127.0.0.1:$PORT" \
            --state-dir /run/nfslab/state --exports /run/nfslab/exports \
            >"$WORK/server/out" 2>"$WORK/server/err" </dev/null &
        echo "LAB_PID=$!" >>"$STATE"
        echo "SERVER=lab" >>"$STATE"
        if ! wait_listening "cat '$WORK/server/out'"; then
            echo "nfs-lab: strata-nfsd did not come up in the lab machine; its log:" >&2
            tail -n 20 "$WORK/server/err" | sed 's/^/  | /' >&2
            return 1
        fi
        ;;
    *) usage "--server is container or lab, not '$SERVER'" ;;
    esac
    echo "nfs-lab: strata-nfsd is listening on 127.0.0.1:$PORT"
}

server_stop() {
    SERVER="" LAB_PID=""
    # shellcheck disable=SC1090
    [ -f "$STATE" ] && . "$STATE"
    if [ -d "$WORK/podman/root" ]; then
        podman_setup
        if pm container exists "$CONTAINER" 2>/dev/null; then
            echo "nfs-lab: removing $CONTAINER"
            pm rm -f -t 2 "$CONTAINER" >/dev/null 2>&1 || echo "nfs-lab: cannot remove $CONTAINER" >&2
        fi
    fi
    if [ -n "$LAB_PID" ] && kill -0 "$LAB_PID" 2>/dev/null; then
        echo "nfs-lab: stopping the lab machine (pid $LAB_PID)"
        kill "$LAB_PID"
        i=0
        while kill -0 "$LAB_PID" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -0 "$LAB_PID" 2>/dev/null && kill -KILL "$LAB_PID"
    fi
}

# --- the client VM ------------------------------------------------------------

# The client is instance nfstest of the strata vm image named after
# VM_IMAGE (vm.qcow2: image "vm"), built with the client's packages;
# VM_DIR/VM_IMAGE links to its base disk.
# The client's packages: the lab's list, shared with the vm suite's image.
VM_PACKAGES=$(grep -v '^#' "$(dirname "$0")/vm-packages" | tr -d ' \n') ||
    die "no package list '$(dirname "$0")/vm-packages'"
# How long cloud-init may take to print the marker, boot included.
MARKER_WAIT=300
VM_INSTANCE=nfstest
VM_NAME=${VM_IMAGE%.qcow2}

have_vm() {
    [ -x "$STRATA" ] && "$STRATA" vm --help >/dev/null 2>&1
}

# vm SUBCOMMAND... : strata vm with the lab's vm dir (options go before NAME).
vm() {
    if [ "$1" = image ]; then
        shift 2
        "$STRATA" vm image build --vm-dir "$VM_DIR" "$@"
    else
        sub=$1
        shift
        "$STRATA" vm "$sub" --vm-dir "$VM_DIR" "$@"
    fi
}
# One ssh connection for the whole environment (a handshake costs seconds
# under TCG): a master started on its own, with no stdio of ours (a
# command substitution or a log pipe would wait for it), kept SSH_PERSIST
# idle seconds, closed by stop-env; the other sessions share it.
SSH_PERSIST=900
ssh_mux() { echo "-o ControlMaster=no -o ControlPath=$VM_DIR/ssh-mux"; }
ssh_master() {
    ssh -O check -o ControlPath="$VM_DIR/ssh-mux" "$VM_HOST" >/dev/null 2>&1 && return 0
    ssh -F "$SSH_CONFIG" -o ControlMaster=yes -o ControlPath="$VM_DIR/ssh-mux" \
        -o ControlPersist="$SSH_PERSIST" -f -N "$VM_HOST" </dev/null >/dev/null 2>&1
}
# shellcheck disable=SC2046
vssh() { ssh -F "$SSH_CONFIG" $(ssh_mux) "$VM_HOST" "$@"; }
# shellcheck disable=SC2046
vscp() { scp -q -F "$SSH_CONFIG" $(ssh_mux) "$@"; }

# vm_host: SSH_CONFIG (the instance's ssh_config, from strata vm) and the
# host name it defines.
vm_host() {
    SSH_CONFIG=$(vm ssh-config --instance "$VM_INSTANCE" "$VM_NAME") || return 1
    VM_HOST=$(awk '$1 == "Host" { print $2; exit }' "$SSH_CONFIG")
    [ -n "$VM_HOST" ] && ssh_master
}

client_start() {
    [ "$CLIENT" = none ] && return 0
    [ "$CLIENT" = vm ] || usage "--client is vm or none, not '$CLIENT'"
    mkdir -p "$VM_DIR" || die "cannot make '$VM_DIR'"
    seed_iso
    echo "nfs-lab: seed $VM_DIR/$CIDATA"
    if ! have_vm; then
        echo "nfs-lab: the client VM needs 'strata vm' (the VM lab), which '$STRATA' lacks" >&2
        return 1
    fi
    echo "nfs-lab: the client image $VM_NAME ($VM_PACKAGES)"
    vm image build --packages "$VM_PACKAGES" "$VM_NAME" || return 1
    ln -sfn "images/$VM_NAME/base.qcow2" "$VM_DIR/$VM_IMAGE"
    echo "VM_STARTED=1" >>"$STATE"
    # The seed is the guest's drive labelled cidata; the image's
    # cloud-init service runs cloud-init's stages on it, whose last step
    # prints the marker. strata vm start returns once sshd is up, which
    # can come before or after it.
    echo "nfs-lab: starting the client VM ($VM_NAME, instance $VM_INSTANCE, seed $CIDATA)"
    vm start --instance "$VM_INSTANCE" --seed "$VM_DIR/$CIDATA" "$VM_NAME" || return 1
    console="$VM_DIR/instances/$VM_NAME/$VM_INSTANCE/console.log"
    pid=$(cat "$VM_DIR/instances/$VM_NAME/$VM_INSTANCE/qemu.pid" 2>/dev/null)
    wait_marker "$console" "$MARKER" "$MARKER_WAIT" "$pid" || return 1
    vm_host || { echo "nfs-lab: no ssh connection to the client VM" >&2; return 1; }
    echo "nfs-lab: the client VM is ready ($MARKER)"
}

client_stop() {
    VM_STARTED=""
    # shellcheck disable=SC1090
    [ -f "$STATE" ] && . "$STATE"
    [ -n "$VM_STARTED" ] || return 0
    [ -n "$VM_DIR" ] || VM_DIR=$(sed -n 's/^VM_DIR=//p' "$STATE")
    VM_NAME=$(sed -n 's/^VM_NAME=//p' "$STATE")
    echo "nfs-lab: stopping the client VM"
    [ -S "$VM_DIR/ssh-mux" ] && ssh -o ControlPath="$VM_DIR/ssh-mux" -O exit x >/dev/null 2>&1
    vm stop --instance "$VM_INSTANCE" --grace 10 "$VM_NAME" >/dev/null 2>&1
    vm destroy --instance "$VM_INSTANCE" --yes "$VM_NAME" >/dev/null 2>&1 ||
        echo "nfs-lab: cannot destroy the VM instance $VM_INSTANCE" >&2
}

stop_env() {
    client_stop
    server_stop
    rm -f "$STATE"
}

case $ACTION in
start-env)
    need NFSD:nfsd STRATA:strata IMAGE:image TAG:tag PORT:port SERVER:server \
        EXPORT_MODE:export-mode CLIENT:client VM_DIR:vm-dir VM_IMAGE:vm-image CIDATA:cidata
    case $EXPORT_MODE in rw | ro) ;; *) usage "--export-mode is rw or ro, not '$EXPORT_MODE'" ;; esac
    case $PORT in '' | *[!0-9]*) usage "--port wants a number, not '$PORT'" ;; esac
    [ -f "$STATE" ] && stop_env
    {
        echo "PORT=$PORT"
        echo "CLIENT=$CLIENT"
        echo "VM_DIR=$VM_DIR"
        echo "VM_NAME=$VM_NAME"
    } >"$STATE"
    if ! server_start || ! client_start; then
        stop_env
        exit 1
    fi
    echo "nfs-lab: environment up (server $SERVER on 127.0.0.1:$PORT, client $CLIENT)"
    ;;
test)
    need TESTCASE:testcase RUNNER:runner
    [ -f "$STATE" ] || die "no environment is running under '$WORK': run 'strata lab nfs start-env' first"
    # shellcheck disable=SC1090
    . "$STATE"
    if ! port_open "$PORT"; then
        echo "nfs-lab: the NFS server on 127.0.0.1:$PORT is down (nothing accepts connections)" >&2
        echo "NFS test FAILED"
        exit 1
    fi
    if [ "$CLIENT" != vm ]; then
        echo "nfs-lab: the environment has no client VM (--client $CLIENT): nothing runs the cases" >&2
        echo "NFS test FAILED"
        exit 1
    fi
    have_vm || die "'$STRATA' lacks 'strata vm'"
    vm_host || die "no ssh config for the client VM (is it running? 'strata lab nfs start-env')"
    vscp "$RUNNER" "$VM_HOST:/root/posix-runner.py" ||
        die "cannot copy the runner into the VM"
    echo "nfs-lab: running $TESTCASE in the VM against 10.0.2.2:$PORT"
    # -tt would mix stderr in and add CRs; a plain session streams both.
    vssh "python3 -u /root/posix-runner.py --server 10.0.2.2 --port $PORT --export /export --mountpoint /mnt/nfstest --wait 10 $TESTCASE"
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "NFS test PASSED"
    else
        echo "NFS test FAILED"
    fi
    exit $(($rc == 0 ? 0 : 1))
    ;;
stop-env)
    stop_env
    echo "nfs-lab: environment stopped"
    ;;
*) usage "unknown action '$ACTION': start-env, test, stop-env" ;;
esac
