#!/usr/bin/env bash
# Installs (or reinstalls) the s3logs plugin from build/plugin as $PLUGIN with
# the spool bind mount at $SPOOL. A plugin already installed under that name is
# disabled with --force and removed first; its settings (credentials, endpoint
# policy, log level, spool limit and policy, backoff) are carried over to the
# new one. Containers still running with the old plugin instance are listed:
# Docker gives the new instance no access to their log FIFOs, so they must be
# restarted for their logs to flow again.
#
# Secrets never go on a command line (every local user can read command lines
# in ps and /proc/*/cmdline). `docker plugin set` has no stdin form, so:
#   - non-secret settings (LOG_LEVEL, SPOOL_*, UPLOAD_BACKOFF_MAX, JOURNAL_LIMIT, AWS_REGION,
#     ALLOWED_ENDPOINTS, METRICS_ADDR, PPROF, READ_LOGS) and the spool mount go through
#     `docker plugin set`;
#   - the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#     AWS_SESSION_TOKEN) are read from `docker plugin inspect` through a pipe
#     and sent to the Engine API's POST /plugins/{name}/set as a request body
#     on curl's stdin, over the daemon's unix socket (DOCKER_HOST or the
#     current docker context). They are never echoed, written to a file, or
#     put into the plugin's config.json (whose defaults `docker plugin push`
#     would publish).
# If that is not possible (no curl, a daemon reached over TCP or ssh, an API
# error), the credentials are not carried over: the plugin is enabled
# without them (segments wait in the spool) and a warning names the settings
# to set again, by the user, while the plugin is disabled.
set -euo pipefail

PLUGIN=${PLUGIN:?PLUGIN is required}
SPOOL=${SPOOL:?SPOOL is required}
SRC=${SRC:-build/plugin}
SETTABLE='^(LOG_LEVEL|AWS_REGION|SPOOL_LIMIT|SPOOL_POLICY|UPLOAD_BACKOFF_MAX|JOURNAL_LIMIT|ALLOWED_ENDPOINTS|METRICS_ADDR|PPROF|READ_LOGS)='
SECRET_NAMES='AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN'

mkdir -p "$SPOOL"
chmod 0700 "$SPOOL"

# docker_socket prints the path of the daemon's unix socket, or fails.
docker_socket() {
	local host=${DOCKER_HOST:-}
	if [ -z "$host" ]; then
		host=$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null) || host=unix:///var/run/docker.sock
	fi
	case $host in
	unix://*) printf '%s\n' "${host#unix://}" ;;
	*) return 1 ;;
	esac
}

# set_secrets sends the JSON array on stdin to POST /plugins/$PLUGIN/set.
# Only the HTTP status is looked at, never the body (it could quote values).
set_secrets() {
	local sock code
	command -v curl >/dev/null || { echo "curl is not installed"; return 1; }
	sock=$(docker_socket) || { echo "the Docker daemon is not reached over a unix socket"; return 1; }
	code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" -X POST \
		-H 'Content-Type: application/json' --data-binary @- \
		"http://localhost/plugins/$PLUGIN/set") || { echo "curl failed (exit $?) on $sock"; return 1; }
	case $code in
	2??) return 0 ;;
	*) echo "the Engine API answered HTTP $code"; return 1 ;;
	esac
}

settings=()     # NAME=VALUE of non-secret settings
secrets=()      # JSON strings "NAME=VALUE" of non-empty credentials
secret_names=() # their names, for messages
running=()
if docker plugin inspect "$PLUGIN" >/dev/null 2>&1; then
	while IFS= read -r kv; do
		[[ $kv =~ $SETTABLE ]] && settings+=("$kv")
	done < <(docker plugin inspect -f '{{range .Settings.Env}}{{println .}}{{end}}' "$PLUGIN")
	# One JSON string per line (JSON escapes newlines), read through a pipe.
	while IFS= read -r js; do
		if [[ $js =~ ^\"($SECRET_NAMES)=(.) ]] && [ "${BASH_REMATCH[2]}" != '"' ]; then
			secrets+=("$js")
			secret_names+=("${BASH_REMATCH[1]}")
		fi
	done < <(docker plugin inspect -f '{{range .Settings.Env}}{{json .}}{{println}}{{end}}' "$PLUGIN")
	while read -r name driver; do
		[ "$driver" = "$PLUGIN" ] && running+=("${name#/}")
	done < <(docker ps -q | xargs -r docker inspect -f '{{.Name}} {{.HostConfig.LogConfig.Type}}')
	if [ "$(docker plugin inspect -f '{{.Enabled}}' "$PLUGIN")" = true ]; then
		docker plugin disable --force "$PLUGIN" >/dev/null
	fi
	docker plugin rm --force "$PLUGIN" >/dev/null
fi
docker plugin create "$PLUGIN" "$SRC" >/dev/null
# Non-secret values only: these are visible in ps while the command runs.
docker plugin set "$PLUGIN" spool.source="$SPOOL" ${settings[@]+"${settings[@]}"}
carried=${#settings[@]}
if [ ${#secrets[@]} -gt 0 ]; then
	body=$(IFS=,; printf '[%s]' "${secrets[*]}") # printf is a builtin: no command line
	if why=$(printf '%s' "$body" | set_secrets); then
		carried=$((carried + ${#secrets[@]}))
	else
		echo "warning: the previous plugin's credentials (${secret_names[*]}) were not carried over: $why." >&2
		echo "warning: uploads wait in the spool until they are set again, while the plugin is disabled:" >&2
		echo "warning:   docker plugin disable $PLUGIN; docker plugin set $PLUGIN ${secret_names[*]/%/=...}; docker plugin enable $PLUGIN" >&2
		echo "warning: (README, Install on a Docker host, shows how to set them without putting them on a command line)" >&2
	fi
	unset body
fi
docker plugin enable "$PLUGIN" >/dev/null
echo "plugin $PLUGIN installed and enabled (spool $SPOOL, $carried settings carried over)"
if [ ${#running[@]} -gt 0 ]; then
	echo "warning: these running containers log through the previous plugin instance and get no new logs stored until restarted: ${running[*]}" >&2
fi
