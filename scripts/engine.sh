#!/usr/bin/env bash
# engine.sh makes sure a Docker Engine and the tools s3logs' demo and tests
# call are on this machine. `make demo`, `make test` and .ci/run use it, so a
# fresh Debian machine needs nothing but Go and make.
#
#   scripts/engine.sh up demo|test
#       Installs what is missing (Debian packages, as root): zstd, jq,
#       awscli, curl, docker.io when the docker CLI is missing, and for `test`
#       gcc, g++ (cgo) and docker-registry (the registry e2e test runs its own
#       on a free port; the package's service is not started). If `docker version` reaches no
#       daemon, installs docker.io when dockerd is missing and starts one the
#       way CI always has:
#         dockerd --iptables=false --ip-masq=false --bridge=none $DOCKERD_FLAGS
#       in its own session, output appended to $DOCKERD_LOG, and waits until
#       it answers. The dockerd started is recorded in $STATE and left
#       running (`make demo` does this: its user keeps using the engine).
#   scripts/engine.sh run demo|test -- COMMAND...
#       `up`, then COMMAND, then stops the dockerd that this `up` started, if
#       it did start one; exits with COMMAND's status (`make test` does this).
#   scripts/engine.sh down
#       Stops the dockerd recorded in $STATE (started by an earlier `up`).
#   scripts/engine.sh status
#       Says whether the engine that answers was started by this script.
#   scripts/engine.sh need COMMAND...
#       Installs the Debian package of each COMMAND that is missing.
#
# Stopping only ever touches a dockerd this script started: the recorded pid
# if it still runs, else the pid in dockerd's pidfile ($DOCKERD_PIDFILE) if
# that process is a dockerd with the recorded command line that started
# after the recorded one (the fault tests restart dockerd that way, under a
# new pid). Anything else is left alone, and said so. A dockerd that runs
# already (a system service, another user's) is never stopped.
#
# Environment: DOCKERD_LOG (default /var/log/s3logs-dockerd.log),
# DOCKERD_TIMEOUT seconds to wait for it (60), DOCKERD_FLAGS extra flags
# (e.g. -H/--data-root/--exec-root/--pidfile to run next to another engine,
# with a matching DOCKER_HOST and DOCKERD_PIDFILE), DOCKERD_PIDFILE (default
# /var/run/docker.pid), DOCKERD_STOP_TIMEOUT seconds a stopping dockerd may
# take before SIGKILL (60), S3LOGS_ENGINE_STATE (default
# /run/s3logs-engine.state).
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/s3logs-dockerd.log}
DOCKERD_TIMEOUT=${DOCKERD_TIMEOUT:-60}
DOCKERD_FLAGS=${DOCKERD_FLAGS:-}
DOCKERD_PIDFILE=${DOCKERD_PIDFILE:-/var/run/docker.pid}
STATE=${S3LOGS_ENGINE_STATE:-/run/s3logs-engine.state}
# How long a stopping dockerd may take: it stops containers (10 s each at
# most, in parallel) and then plugins (SIGKILL 10 s after SIGTERM).
STOP_TIMEOUT=${DOCKERD_STOP_TIMEOUT:-60}
export DEBIAN_FRONTEND=noninteractive

log() { echo "engine: $*" >&2; }
die() {
	log "$*"
	exit 1
}

apt_updated=false

# package_of prints the Debian package that provides command $1.
package_of() {
	case $1 in
	aws) echo awscli ;;
	docker | dockerd) echo docker.io ;;
	*) echo "$1" ;;
	esac
}

# need installs the packages of the commands given that are not on PATH.
need() {
	local pkgs=() c p
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 && continue
		p=$(package_of "$c")
		[[ " ${pkgs[*]-} " == *" $p "* ]] || pkgs+=("$p")
	done
	[ ${#pkgs[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing: ${pkgs[*]}; install as root: apt-get install ${pkgs[*]}"
	fi
	command -v apt-get >/dev/null 2>&1 || die "missing: ${pkgs[*]}, and no apt-get to install them with"
	local out
	out=$(mktemp)
	if ! $apt_updated; then
		log "apt-get update"
		apt-get update -qq >"$out" 2>&1 || {
			cat "$out" >&2
			rm -f "$out"
			die "apt-get update failed"
		}
		apt_updated=true
	fi
	log "installing ${pkgs[*]} (apt-get install)"
	apt-get install -y -qq "${pkgs[@]}" >"$out" 2>&1 || {
		tail -n 30 "$out" >&2
		rm -f "$out"
		die "apt-get install ${pkgs[*]} failed"
	}
	rm -f "$out"
}

# need_registry installs Debian's docker-registry without starting the
# service its package declares: the test runs its own registry, and a
# registry left listening on :5000 is not ours to leave behind.
need_registry() {
	command -v docker-registry >/dev/null 2>&1 && return 0
	local guard=/usr/sbin/policy-rc.d
	if [ "$(id -u)" -eq 0 ] && [ ! -e "$guard" ]; then
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
		printf '#!/bin/sh\n# placed by s3logs scripts/engine.sh while installing docker-registry\nexit 101\n' >"$guard"
		chmod 0755 "$guard"
		need docker-registry
		rm -f "$guard"
		trap - EXIT
	else
		need docker-registry
	fi
	if [ -d /run/systemd/system ]; then
		systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
	fi
}

# tools installs what the given purpose (demo or test) calls, but not the
# engine itself (up installs dockerd only when no engine answers).
tools() {
	case $1 in
	demo) need docker zstd jq aws curl ;;
	test)
		# gcc and g++: cgo, for the query module's DuckDB bindings.
		need docker zstd jq aws curl gcc g++
		need_registry
		;;
	*) die "unknown purpose '$1' (want demo or test)" ;;
	esac
}

engine_up() { docker version >/dev/null 2>&1; }

server_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown; }

# comm_of, cmdline_of and start_of read a process's name, command line (NULs
# as spaces) and start time (clock ticks after boot) from /proc.
comm_of() { cat "/proc/$1/comm" 2>/dev/null || true; }
cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }
start_of() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	# Field 22; fields 3 on follow the ") " that ends the name.
	stat=${stat##*) }
	# shellcheck disable=SC2086 # split into fields on purpose
	set -- $stat
	echo "${20}"
}
is_dockerd() { [ -n "$1" ] && [ "$(comm_of "$1")" = dockerd ]; }

# state_get prints the value of key $1 in the state file.
state_get() { sed -n "s/^$1=//p" "$STATE" 2>/dev/null | head -n 1; }

# start_dockerd starts dockerd, waits until it answers and records it.
start_dockerd() {
	local by=$1 pid deadline
	[ "$(id -u)" -eq 0 ] || die "no Docker Engine answers and only root can start one: run this as root, or start it yourself: sudo dockerd --iptables=false --ip-masq=false --bridge=none >>$DOCKERD_LOG 2>&1 &"
	log "no Docker Engine answers; starting one: dockerd --iptables=false --ip-masq=false --bridge=none $DOCKERD_FLAGS (log: $DOCKERD_LOG)"
	mkdir -p "$(dirname "$DOCKERD_LOG")"
	# shellcheck disable=SC2086 # DOCKERD_FLAGS is a list of flags
	setsid dockerd --iptables=false --ip-masq=false --bridge=none $DOCKERD_FLAGS >>"$DOCKERD_LOG" 2>&1 </dev/null &
	pid=$!
	deadline=$(($(date +%s) + DOCKERD_TIMEOUT))
	until engine_up; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "dockerd exited during start-up; last lines of $DOCKERD_LOG:"
			tail -n 20 "$DOCKERD_LOG" >&2 || true
			exit 1
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			log "dockerd did not answer within ${DOCKERD_TIMEOUT}s; stopping it; last lines of $DOCKERD_LOG:"
			tail -n 20 "$DOCKERD_LOG" >&2 || true
			kill -TERM "$pid" 2>/dev/null || true
			exit 1
		fi
		sleep 0.5
	done
	is_dockerd "$pid" || die "process $pid is not dockerd (setsid forked?); not recording it"
	mkdir -p "$(dirname "$STATE")"
	{
		echo "pid=$pid"
		echo "start=$(start_of "$pid")"
		echo "cmdline=$(cmdline_of "$pid")"
		echo "by=$by"
		echo "at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "log=$DOCKERD_LOG"
	} >"$STATE"
	log "Docker Engine $(server_version) is up (dockerd pid $pid, started by $by)"
	started_pid=$pid
}

# up makes sure the tools and an engine are there. It sets started_pid when
# it started dockerd.
started_pid=""
up() {
	local purpose=$1 by=${2:-scripts/engine.sh up}
	tools "$purpose"
	if engine_up; then
		log "Docker Engine $(server_version) is running already; using it as it is"
		return 0
	fi
	need dockerd
	# A dockerd that runs but does not answer yet (starting: the package's
	# service, or a restart) gets no second one next to it on the same
	# pidfile and data root; it is waited for and used as it is.
	local other
	other=$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)
	# One that exits meanwhile (it was stopping) is replaced by our own.
	if is_dockerd "$other"; then
		log "dockerd pid $other runs but does not answer yet; waiting up to ${DOCKERD_TIMEOUT}s"
		local deadline=$(($(date +%s) + DOCKERD_TIMEOUT))
		until engine_up; do
			if ! is_dockerd "$other"; then
				log "dockerd pid $other exited (it was stopping); starting our own"
				start_dockerd "$by"
				return 0
			fi
			[ "$(date +%s)" -lt "$deadline" ] || die "dockerd pid $other does not answer 'docker version'; not starting another next to it"
			sleep 0.5
		done
		log "Docker Engine $(server_version) is up; using it as it is"
		return 0
	fi
	start_dockerd "$by"
}

# recorded_dockerd prints the pid of the dockerd recorded in $STATE that
# still runs (or its restarted successor), or nothing. It explains on stderr.
recorded_dockerd() {
	[ -f "$STATE" ] || return 0
	local pid start cmdline now
	pid=$(state_get pid)
	start=$(state_get start)
	cmdline=$(state_get cmdline)
	if is_dockerd "$pid" && [ "$(start_of "$pid")" = "$start" ]; then
		echo "$pid"
		return 0
	fi
	now=$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)
	if is_dockerd "$now" && [ "$(cmdline_of "$now")" = "$cmdline" ] && [ "$(start_of "$now")" -gt "$start" ] 2>/dev/null; then
		log "the dockerd started as pid $pid was restarted (same command line) as pid $now"
		echo "$now"
		return 0
	fi
	if is_dockerd "$now"; then
		log "the dockerd recorded in $STATE (pid $pid) is gone; dockerd pid $now was started otherwise: leaving it alone"
	else
		log "the dockerd recorded in $STATE (pid $pid) is gone"
	fi
}

# down stops the recorded dockerd, if any, and removes the record.
down() {
	local pid
	pid=$(recorded_dockerd)
	if [ -z "$pid" ]; then
		rm -f "$STATE"
		log "no dockerd started by this script is running; nothing to stop"
		return 0
	fi
	log "stopping dockerd pid $pid (started by $(state_get by) at $(state_get at))"
	kill -TERM "$pid" 2>/dev/null || true
	local i
	for ((i = 0; i < STOP_TIMEOUT * 2; i++)); do
		is_dockerd "$pid" || break
		sleep 0.5
	done
	if is_dockerd "$pid"; then
		log "dockerd pid $pid still runs ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$STATE"
	log "dockerd stopped"
}

status() {
	local pid
	pid=$(recorded_dockerd 2>/dev/null)
	if [ -n "$pid" ]; then
		echo "The Docker Engine (dockerd pid $pid, log $(state_get log)) was started by $(state_get by) at $(state_get at) and is still running."
		echo "Keep using it, or stop it with: scripts/engine.sh down"
	elif engine_up; then
		echo "The Docker Engine $(server_version) that answers was not started by scripts/engine.sh; it is left as it is."
	else
		echo "No Docker Engine answers."
	fi
}

# stop_started is the EXIT trap of `run` after it started dockerd.
stop_started() {
	local rc=$?
	log "stopping the dockerd this command started"
	down
	exit "$rc"
}

usage() { die "usage: $0 up demo|test | run demo|test -- COMMAND... | down | status | need COMMAND..."; }

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
up)
	[ $# -eq 1 ] || usage
	up "$1" "${S3LOGS_ENGINE_BY:-scripts/engine.sh up $1}"
	if [ -n "$started_pid" ]; then
		log "this dockerd keeps running afterwards; stop it with: scripts/engine.sh down"
	fi
	;;
run)
	if [ $# -lt 3 ] || [ "$2" != -- ]; then
		usage
	fi
	purpose=$1
	shift 2
	up "$purpose" "${S3LOGS_ENGINE_BY:-scripts/engine.sh run $purpose}"
	if [ -n "$started_pid" ]; then
		trap stop_started EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
	fi
	"$@"
	;;
down)
	[ $# -eq 0 ] || usage
	down
	;;
status)
	[ $# -eq 0 ] || usage
	status
	;;
need)
	[ $# -ge 1 ] || usage
	need "$@"
	;;
*) usage ;;
esac
