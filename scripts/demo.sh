#!/usr/bin/env bash
# `make demo`: logs a container through the installed s3logs plugin into a
# throwaway MinIO server and prints what landed in S3. Expects the plugin
# ($PLUGIN) installed, the generator image ($LOGGEN_IMAGE) built and MinIO at
# $MINIO (the Makefile does all three). Needs docker, aws CLI and zstd.
# MinIO listens on 127.0.0.1:19000 (console 19001), or on the next free pair
# of ports when those are taken, or on DEMO_PORT (and DEMO_CONSOLE_PORT).
# Leaves the plugin enabled with empty credentials, as `make plugin` installs it.
set -euo pipefail

PLUGIN=${PLUGIN:-s3logs:latest}
LOGGEN_IMAGE=${LOGGEN_IMAGE:-s3logs-loggen:test}
MINIO=${MINIO:-bin/minio}
BUCKET=s3logs-demo
NAME=s3logs-demo

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

for tool in docker aws zstd; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
[ -x "$MINIO" ] || die "no MinIO binary at $MINIO (run: make minio)"

# MinIO's ports: DEMO_PORT (and DEMO_CONSOLE_PORT, default DEMO_PORT+1) when
# given, which must then be free; otherwise the first free pair from 19000.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${DEMO_PORT:-}" ]; then
	PORT=$DEMO_PORT
	CONSOLE_PORT=${DEMO_CONSOLE_PORT:-$((PORT + 1))}
	for p in "$PORT" "$CONSOLE_PORT"; do
		in_use "$p" && die "port $p (DEMO_PORT/DEMO_CONSOLE_PORT) is in use; choose others, or leave DEMO_PORT unset to pick free ones"
	done
else
	PORT=""
	for ((p = 19000; p < 19200; p += 2)); do
		if ! in_use "$p" && ! in_use "$((p + 1))"; then
			PORT=$p
			break
		fi
	done
	[ -n "$PORT" ] || die "no free pair of ports between 19000 and 19199; set DEMO_PORT"
	CONSOLE_PORT=$((PORT + 1))
	[ "$PORT" = 19000 ] || echo "demo: port 19000 is taken; MinIO uses $PORT (console $CONSOLE_PORT)"
fi
ENDPOINT=http://127.0.0.1:$PORT

work=$(mktemp -d /tmp/s3logs-demo.XXXXXX)
rand() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
AWS_ACCESS_KEY_ID="demo$(rand 8)"
AWS_SECRET_ACCESS_KEY="$(rand 20)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
minio_pid=""

plugin_set() {
	if [ "$(docker plugin inspect -f '{{.Enabled}}' "$PLUGIN")" = true ]; then
		docker plugin disable --force "$PLUGIN" >/dev/null
	fi
	docker plugin set "$PLUGIN" "$@"
	docker plugin enable "$PLUGIN" >/dev/null
}

cleanup() {
	docker rm -f "$NAME" >/dev/null 2>&1 || true
	plugin_set AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= AWS_REGION= >/dev/null 2>&1 || true
	if [ -n "$minio_pid" ]; then
		kill "$minio_pid" 2>/dev/null || true
		wait "$minio_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

say "starting a throwaway MinIO on $ENDPOINT"
MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
	"$MINIO" server "$work/data" --address "127.0.0.1:$PORT" --console-address "127.0.0.1:$CONSOLE_PORT" --quiet \
	>"$work/minio.log" 2>&1 &
minio_pid=$!
ready() {
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	printf 'GET /minio/health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	local status
	read -r _ status _ <&3 || true
	exec 3>&-
	[ "$status" = 200 ]
}
for _ in $(seq 1 120); do
	ready 2>/dev/null && break
	kill -0 "$minio_pid" 2>/dev/null || { cat "$work/minio.log" >&2; die "MinIO exited"; }
	sleep 0.25
done
ready 2>/dev/null || die "MinIO not ready after 30s"
aws s3 mb "s3://$BUCKET" --endpoint-url "$ENDPOINT"

say "giving $PLUGIN the MinIO credentials (docker plugin set)"
plugin_set AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" AWS_REGION=us-east-1

say "running a container that logs through $PLUGIN"
docker rm -f "$NAME" >/dev/null 2>&1 || true
set -x
docker run -d --name "$NAME" --network none \
	--log-driver "$PLUGIN" --log-opt endpoint="$ENDPOINT" --log-opt bucket="$BUCKET" \
	"$LOGGEN_IMAGE" -mode interleave -lines 12 -rate 8 -sleep -tag demo
{ set +x; } 2>/dev/null
sleep 2
docker stop "$NAME" >/dev/null
echo "container stopped"

say "waiting for its segments in s3://$BUCKET"
for _ in $(seq 1 50); do
	[ -n "$(aws s3 ls --recursive "s3://$BUCKET/" --endpoint-url "$ENDPOINT")" ] && break
	sleep 0.2
done
aws s3 cp --recursive --only-show-errors "s3://$BUCKET/" "$work/out" --endpoint-url "$ENDPOINT"
mapfile -t keys < <(cd "$work/out" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
[ "${#keys[@]}" -gt 0 ] || die "no objects arrived in s3://$BUCKET (see the dockerd log for the plugin's messages)"

say "keys"
printf '%s\n' "${keys[@]}"
for k in "${keys[@]}"; do
	say "records of $k (aws s3 cp s3://$BUCKET/$k - | zstd -dc)"
	aws s3 cp "s3://$BUCKET/$k" - --endpoint-url "$ENDPOINT" | zstd -dc
done
say "done; MinIO is stopped and its data removed"
