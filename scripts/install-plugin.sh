#!/usr/bin/env bash
# Installs (or reinstalls) the s3logs plugin from build/plugin as $PLUGIN with
# the spool bind mount at $SPOOL. A plugin already installed under that name is
# disabled with --force and removed first; its settings (credentials, log
# level, spool limit and policy, backoff) are carried over to the new one.
# Containers still running with the old plugin instance are listed: Docker
# gives the new instance no access to their log FIFOs, so they must be
# restarted for their logs to flow again.
set -euo pipefail

PLUGIN=${PLUGIN:?PLUGIN is required}
SPOOL=${SPOOL:?SPOOL is required}
SRC=${SRC:-build/plugin}
SETTABLE='^(LOG_LEVEL|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AWS_REGION|SPOOL_LIMIT|SPOOL_POLICY|UPLOAD_BACKOFF_MAX)='

mkdir -p "$SPOOL"
chmod 0700 "$SPOOL"

settings=()
running=()
if docker plugin inspect "$PLUGIN" >/dev/null 2>&1; then
	while IFS= read -r kv; do
		[[ $kv =~ $SETTABLE ]] && settings+=("$kv")
	done < <(docker plugin inspect -f '{{range .Settings.Env}}{{println .}}{{end}}' "$PLUGIN")
	while read -r name driver; do
		[ "$driver" = "$PLUGIN" ] && running+=("${name#/}")
	done < <(docker ps -q | xargs -r docker inspect -f '{{.Name}} {{.HostConfig.LogConfig.Type}}')
	if [ "$(docker plugin inspect -f '{{.Enabled}}' "$PLUGIN")" = true ]; then
		docker plugin disable --force "$PLUGIN" >/dev/null
	fi
	docker plugin rm --force "$PLUGIN" >/dev/null
fi
docker plugin create "$PLUGIN" "$SRC" >/dev/null
# Values go through "docker plugin set" only (never echoed: they hold secrets).
docker plugin set "$PLUGIN" spool.source="$SPOOL" ${settings[@]+"${settings[@]}"}
docker plugin enable "$PLUGIN" >/dev/null
echo "plugin $PLUGIN installed and enabled (spool $SPOOL, ${#settings[@]} settings carried over)"
if [ ${#running[@]} -gt 0 ]; then
	echo "warning: these running containers log through the previous plugin instance and get no new logs stored until restarted: ${running[*]}" >&2
fi
