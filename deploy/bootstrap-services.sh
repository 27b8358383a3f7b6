#!/usr/bin/env bash
# Makes sure what crmhub's tests and `make run` need on this machine is there and running:
# RabbitMQ with its management API, PostgreSQL, and Debian's Chromium for browser tests.
# Starts what is installed but stopped; never restarts what already runs. Idempotent.
#   --broker-only   only RabbitMQ (make run on the embedded SQLite default)
#   --no-browser    skip Chromium
#   --bench         also wrk, the HTTP load generator of `make bench`
set -euo pipefail

want_pg=1 want_browser=1 want_wrk=0
for arg in "$@"; do
  case "$arg" in
    --broker-only) want_pg=0; want_browser=0 ;;
    --no-browser) want_browser=0 ;;
    --bench) want_wrk=1 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '[bootstrap] %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  say "gave up waiting for $what after ${seconds}s"; return 1
}

apt_updated=0
apt_install() {  # apt_install PACKAGE...: another apt run may hold the lock; wait for it
  is_root || { say "not root: cannot apt-get install $*"; return 1; }
  export DEBIAN_FRONTEND=noninteractive
  local wait_lock=(-o DPkg::Lock::Timeout=600)
  if [ "$apt_updated" = 0 ]; then apt-get "${wait_lock[@]}" update -qq; apt_updated=1; fi
  apt-get "${wait_lock[@]}" install -y -qq "$@" >/dev/null
}

ensure_rabbitmq() {
  command -v rabbitmq-server >/dev/null || { say "installing rabbitmq-server"; apt_install rabbitmq-server; }
  if ! port_open 5672; then
    say "starting RabbitMQ"
    rabbitmq-server -detached
    wait_until 90 "RabbitMQ on 5672" port_open 5672
  fi
  # The tests create a vhost per run through the management API.
  if ! curl -sf -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null; then
    say "enabling the RabbitMQ management API"
    wait_until 60 "rabbitmqctl" rabbitmqctl -q status
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
    wait_until 90 "the management API" curl -sf -u guest:guest http://127.0.0.1:15672/api/overview
  fi
  say "RabbitMQ ready"
}

ensure_postgres() {
  local installed_now=0
  if ! command -v pg_ctlcluster >/dev/null; then
    say "installing PostgreSQL"; apt_install postgresql; installed_now=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  if [ "$installed_now" = 1 ]; then
    # A fresh test machine: let the tests connect as postgres over loopback, as on ours.
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
      "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  if ! pg_isready -q -h 127.0.0.1; then
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_until 60 "PostgreSQL" pg_isready -q -h 127.0.0.1
  fi
  wait_until 30 "a PostgreSQL login" psql -h 127.0.0.1 -U postgres -qAtc 'select 1'
  say "PostgreSQL ready"
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Chromium for the browser tests"
    apt_install chromium
  fi
  say "Chromium ready"
}

ensure_dovecot() {
  # The email tests and bench start their own dovecot on a free port with a config in a temp
  # dir: only the binaries are needed, never the system service (policy-rc.d keeps the
  # package's scripts from starting it).
  if [ ! -x /usr/sbin/dovecot ]; then
    say "installing dovecot-imapd for the email tests"
    local guard=0
    if is_root && [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1
    fi
    apt_install dovecot-imapd || { [ "$guard" = 1 ] && rm -f /usr/sbin/policy-rc.d; return 1; }
    [ "$guard" = 1 ] && rm -f /usr/sbin/policy-rc.d
  fi
  say "dovecot ready"
}

ensure_wrk() {
  command -v wrk >/dev/null || { say "installing wrk for the benchmarks"; apt_install wrk; }
}

ensure_rabbitmq
[ "$want_pg" = 1 ] && ensure_postgres
[ "$want_pg" = 1 ] && ensure_dovecot
[ "$want_browser" = 1 ] && ensure_chromium
[ "$want_wrk" = 1 ] && ensure_wrk
exit 0
