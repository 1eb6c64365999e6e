#!/usr/bin/env bash
# Starts or stops the peers of `elevens bench` on loopback, on non-standard ports, with their
# data in a temporary directory. Installs them from Debian's packages if they are absent.
#
#   bench/peers/peers.sh start postgres|redis-always|redis-everysec|all
#   bench/peers/peers.sh stop  postgres|redis-always|redis-everysec|all
#
# Starting a peer that runs restarts it empty.
# Ports: PostgreSQL 54329, Redis (appendfsync always) 63791, Redis (appendfsync everysec) 63792.
set -euo pipefail
action=${1:?start or stop}
which=${2:-all}
state=${ELEVENS_PEERS_DIR:-/tmp/elevens-peers}
mkdir -p "$state"

install_if_absent() {
  local binary=$1 package=$2
  if ! command -v "$binary" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$binary" >/dev/null 2>&1; then
    echo "installing $package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "$package" >/dev/null
  fi
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

start_postgres() {
  install_if_absent initdb postgresql
  local bin data
  bin=$(pg_bin)
  data="$state/postgres"
  rm -rf "$data" && mkdir -p "$data" && chown postgres:postgres "$data" "$state"
  su postgres -c "$bin/initdb -D $data -A trust -U postgres >/dev/null"
  su postgres -c "$bin/pg_ctl -D $data -l $data/log -w -o '-p 54329 -k $state -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on -c max_connections=200 -c shared_buffers=1GB' start >/dev/null"
  echo "postgres on 127.0.0.1:54329"
}

stop_postgres() {
  local data="$state/postgres"
  [ -d "$data" ] || return 0
  su postgres -c "$(pg_bin)/pg_ctl -D $data -m fast stop >/dev/null" || true
  rm -rf "$data"
}

start_redis() {
  local name=$1 port=$2 fsync=$3
  install_if_absent redis-server redis-server
  local data="$state/$name"
  rm -rf "$data" && mkdir -p "$data"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$data" --appendonly yes --appendfsync "$fsync" \
    --save '' --daemonize yes --pidfile "$data/pid" --logfile "$data/log"
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$name on 127.0.0.1:$port"
}

stop_redis() {
  local name=$1 port=$2
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "${state:?}/$name"
}

for peer in postgres redis-always redis-everysec; do
  [ "$which" = all ] || [ "$which" = "$peer" ] || continue
  case "$action:$peer" in
    start:postgres) stop_postgres; start_postgres ;;
    stop:postgres) stop_postgres ;;
    start:redis-always) stop_redis redis-always 63791; start_redis redis-always 63791 always ;;
    stop:redis-always) stop_redis redis-always 63791 ;;
    start:redis-everysec) stop_redis redis-everysec 63792; start_redis redis-everysec 63792 everysec ;;
    stop:redis-everysec) stop_redis redis-everysec 63792 ;;
    *) echo "usage: $0 start|stop postgres|redis-always|redis-everysec|all" >&2; exit 2 ;;
  esac
done
