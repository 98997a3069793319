# Root filesystem of the s3logs plugin. The build context is prepared by
# `make rootfs` (build/rootfs-context/: the static s3logs binary and the host's
# CA bundle); FROM scratch needs no registry. The image is never run: it is
# exported into build/plugin/rootfs/ and installed with `docker plugin create`.
FROM scratch
LABEL s3logs.build=rootfs
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY s3logs /s3logs
ENTRYPOINT ["/s3logs", "plugin"]
