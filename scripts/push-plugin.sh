#!/usr/bin/env bash
# push-plugin.sh publishes the plugin built in build/plugin (`make rootfs`)
# to a registry as $PLUGIN (REGISTRY/NAME:TAG) with `docker plugin push`.
#
# Docker pushes only a plugin installed under the name it pushes to, so the
# build is created (not enabled) as $PLUGIN, pushed, and removed again: the
# engine ends as it was. What is published is config.json and the rootfs,
# with config.json's defaults; no setting made on any installed plugin
# (credentials included) is part of it.
#
# A plugin already installed as $PLUGIN is not touched: the script stops and
# says so (it could be in use, or hold settings someone made). Pushing over
# an existing tag in the registry replaces it there, as `docker push` does.
set -euo pipefail

PLUGIN=${PLUGIN:?PLUGIN is required, e.g. PLUGIN=registry.example.com/s3logs:1.0.0}
SRC=${SRC:-build/plugin}

die() {
	echo "push: $*" >&2
	exit 1
}

case $PLUGIN in
*/*) ;;
*) die "PLUGIN=$PLUGIN names no registry or repository; use make push PLUGIN=REGISTRY/NAME:TAG (or USER/NAME:TAG for Docker Hub)" ;;
esac
if [ ! -f "$SRC/config.json" ] || [ ! -d "$SRC/rootfs" ]; then
	die "no plugin build in $SRC (run: make rootfs)"
fi
if docker plugin inspect "$PLUGIN" >/dev/null 2>&1; then
	die "a plugin named $PLUGIN is installed on this engine; push creates that name from this build, so remove it first (docker plugin rm $PLUGIN) or push under another tag"
fi

docker plugin create "$PLUGIN" "$SRC" >/dev/null
trap 'docker plugin rm --force "$PLUGIN" >/dev/null 2>&1 || echo "push: could not remove the local plugin $PLUGIN; remove it with: docker plugin rm $PLUGIN" >&2' EXIT
echo "push: docker plugin push $PLUGIN"
docker plugin push "$PLUGIN"
echo "push: published $PLUGIN; install it on a Docker host with:"
echo "  docker plugin install $PLUGIN --alias s3logs --grant-all-permissions"
