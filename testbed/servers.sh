#!/usr/bin/env bash
# Fake servers for multi-host tests: each is a network namespace on the test LAN
# (198.51.100.0/24, bridge odybr0) with its own mount, UTS and PID namespaces, its own /run,
# its own dockerd (data under /var/lib/odysseus-testbed/sN) and its own sshd on ports 22
# and 2222 (the second for `[host]:port` known_hosts entries).
#
#   servers.sh up [COUNT]        start s1..sCOUNT (default 3), idempotently
#   servers.sh down              stop every server
#   servers.sh kill|stop|freeze|thaw|cut|uncut sN
#   servers.sh drop-ssh sN       end every SSH connection to sN (its sshd stays up)
#       kill: SIGKILL the server's init (a power cut); stop: a clean shutdown;
#       freeze/thaw: SIGSTOP/SIGCONT all its processes (a hang); cut/uncut: its link down/up
#   servers.sh status            one line per server
#
# Facts: /var/lib/odysseus-testbed/id_ed25519 is the client key every server accepts as
# root; /var/lib/odysseus-testbed/known_hosts lists every server's host key; sN's address is
# 198.51.100.(10+N) and its engine's socket, seen from this machine, is
# /var/lib/odysseus-testbed/sN/run/docker.sock.
set -euo pipefail

BASE=/var/lib/odysseus-testbed
BRIDGE=odybr0
DEPLOY_USER=odydeploy
log() { printf 'testbed: %s\n' "$*" >&2; }

addr() { echo "198.51.100.$((10 + ${1#s}))"; }

ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add 198.51.100.1/24 dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
    # The local dockerd sets FORWARD to DROP: let servers reach each other on the LAN.
    iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
        iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
    # A route to the LAN through the bridge beats the unreachable backstop route.
    ip route replace 198.51.100.0/24 dev "$BRIDGE" src 198.51.100.1
}

ensure_keys() {
    mkdir -p "$BASE"
    [ -f "$BASE/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C odysseus-testbed -f "$BASE/id_ed25519"
}

init_pid() { cat "$BASE/$1/init.pid" 2>/dev/null || true; }

running() {
    local pid
    pid=$(init_pid "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Every process of a server: those sharing its init's PID namespace.
server_pids() {
    local pid ns p
    pid=$(init_pid "$1")
    [ -n "$pid" ] || return 0
    ns=$(readlink "/proc/$pid/ns/pid" 2>/dev/null) || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
    done
}

# Ends every SSH connection to a server (its per-connection sshd processes), keeping
# its listener: what a dropped network path looks like to both ends.
drop_ssh() {
    local p cmd
    for p in $(server_pids "$1"); do
        cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
        case "$cmd" in
            *"[listener]"*) ;;
            "sshd: "*) kill -KILL "$p" 2>/dev/null || true ;;
        esac
    done
}

write_init() {
    local name=$1 dir="$BASE/$1"
    cat >"$dir/init.sh" <<INIT
#!/bin/bash
# PID 1's child inside server $name: private /run, then dockerd and sshd.
set -e
hostname $name
mount --bind $dir/run /run
# Its own /var/lib/odysseus (the host's copy of the deploy journal), empty on a new
# server as on a fresh machine: the rest of /var/lib is this machine's.
mkdir -p $dir/var-lib-odysseus /var/lib/odysseus
mount --bind $dir/var-lib-odysseus /var/lib/odysseus
mkdir -p /run/sshd
# As on a real Debian server: a world-writable, sticky /run/lock.
mkdir -p /run/lock && chmod 1777 /run/lock
ip link set lo up
dockerd --host unix:///run/docker.sock --data-root $dir/docker --exec-root /run/docker-exec \\
    --pidfile /run/docker.pid --bip 198.18.${name#s}.1/24 \\
    --default-address-pool base=198.19.0.0/16,size=24 \\
    --insecure-registry 198.51.100.1:5000 --insecure-registry 198.51.100.1:5001 \\
    >$dir/dockerd.log 2>&1 &
/usr/sbin/sshd -D -e -f $dir/sshd_config >$dir/sshd.log 2>&1 &
trap 'kill -TERM \$(jobs -p) 2>/dev/null; wait; exit 0' TERM INT
wait
INIT
    chmod +x "$dir/init.sh"
    cat >"$dir/sshd_config" <<CFG
Port 22
Port 2222
ListenAddress $(addr "$name")
HostKey $dir/ssh_host_ed25519_key
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
MaxSessions 100
ClientAliveInterval 5
PidFile /run/sshd.pid
CFG
}

start_server() {
    local name=$1 dir="$BASE/$1" ip
    ip=$(addr "$name")
    if running "$name"; then
        return 0
    fi
    mkdir -p "$dir"
    # A killed server leaves stale pid files and sockets: /run starts empty.
    rm -rf "$dir/run"
    mkdir -p "$dir/run"
    [ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key"
    cp "$BASE/id_ed25519.pub" "$dir/authorized_keys"
    write_init "$name"
    if [ ! -e "/run/netns/ody-$name" ]; then
        ip netns add "ody-$name"
    fi
    if ! ip link show "ody-$name-h" >/dev/null 2>&1; then
        ip link add "ody-$name-h" type veth peer name "ody-$name-p"
        ip link set "ody-$name-p" netns "ody-$name"
        ip -n "ody-$name" link set "ody-$name-p" name eth0
        ip -n "ody-$name" addr add "$ip/24" dev eth0
        ip link set "ody-$name-h" master "$BRIDGE"
    fi
    ip link set "ody-$name-h" up
    ip -n "ody-$name" link set eth0 up
    ip -n "ody-$name" route replace default via 198.51.100.1 2>/dev/null || true
    # nsenter --net, not `ip netns exec`: the latter remounts /sys and hides cgroups.
    nohup nsenter --net="/run/netns/ody-$name" \
        unshare --mount --uts --pid --fork --mount-proc --propagation slave \
        tini -s -- "$dir/init.sh" >"$dir/init.log" 2>&1 &
    local unshare_pid=$!
    local child=""
    for _ in $(seq 1 50); do
        child=$(pgrep -P "$unshare_pid" | head -n1 || true)
        [ -n "$child" ] && break
        sleep 0.1
    done
    echo "$child" >"$dir/init.pid"
    # Record the host key under [addr]:22-free form (port 22 is the default).
    local key
    key=$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")
    grep -v "^$ip " "$BASE/known_hosts" 2>/dev/null >"$BASE/known_hosts.new" || true
    echo "$ip $key" >>"$BASE/known_hosts.new"
    mv "$BASE/known_hosts.new" "$BASE/known_hosts"
}

wait_ready() {
    local name=$1 ip sock
    ip=$(addr "$name")
    sock="$BASE/$name/run/docker.sock"
    for _ in $(seq 1 150); do
        if docker -H "unix://$sock" version >/dev/null 2>&1 && (exec 3<>"/dev/tcp/$ip/22") 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    log "server $name did not come up; its logs:"
    tail -n 20 "$BASE/$name/dockerd.log" "$BASE/$name/sshd.log" "$BASE/$name/init.log" >&2 || true
    return 1
}

up() {
    local count=${1:-3} i
    ensure_keys
    ensure_bridge
    # A non-root deploy user in the docker group (the servers share this machine's
    # accounts), for ssh.user tests; the servers' sshd take the same key for every user.
    if ! id "$DEPLOY_USER" >/dev/null 2>&1 && getent group docker >/dev/null; then
        # '*': no password, but not locked (sshd without PAM refuses locked accounts).
        useradd -m -s /bin/sh -G docker -p '*' "$DEPLOY_USER"
    fi
    for i in $(seq 1 "$count"); do start_server "s$i"; done
    for i in $(seq 1 "$count"); do wait_ready "s$i"; done
    log "servers s1..s$count are up on 198.51.100.11..$((10 + count))"
}

stop_server() {
    local name=$1 pid
    pid=$(init_pid "$name")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # tini forwards TERM to the init script, which stops dockerd and sshd.
        kill -CONT $(server_pids "$name") 2>/dev/null || true
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$BASE/$name/init.pid"
}

down() {
    local dir name
    for dir in "$BASE"/s*/; do
        [ -d "$dir" ] || continue
        name=$(basename "$dir")
        stop_server "$name"
        ip link del "ody-$name-h" 2>/dev/null || true
        ip netns del "ody-$name" 2>/dev/null || true
    done
}

case "${1:-status}" in
    up) up "${2:-3}" ;;
    down) down ;;
    kill) kill -KILL "$(init_pid "$2")" ;;
    stop) stop_server "$2" ;;
    freeze) kill -STOP $(server_pids "$2") ;;
    thaw) kill -CONT $(server_pids "$2") ;;
    cut) ip link set "ody-$2-h" down ;;
    drop-ssh) drop_ssh "$2" ;;
    # A shell command as another user of server sN (its /run, its processes): `as sN USER CMD`.
    as) exec nsenter -t "$(init_pid "$2")" -m -u -n -p setpriv --reuid="$3" --regid="$(id -g "$3")" --clear-groups sh -c "$4" ;;
    uncut) ip link set "ody-$2-h" up ;;
    start) ensure_keys; ensure_bridge; start_server "$2"; wait_ready "$2" ;;
    status)
        for dir in "$BASE"/s*/; do
            [ -d "$dir" ] || continue
            name=$(basename "$dir")
            if running "$name"; then echo "$name $(addr "$name") up (init pid $(init_pid "$name"))"; else echo "$name $(addr "$name") down"; fi
        done
        ;;
    *) echo "usage: $0 up [N]|down|status|start sN|kill|stop|freeze|thaw|cut|uncut|drop-ssh sN|as sN USER CMD" >&2; exit 2 ;;
esac
