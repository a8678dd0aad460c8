#!/bin/sh
# Make a Debian base image from Debian's packages (debootstrap + docker import),
# for machines that cannot reach a container registry.
#
# Usage: containers/build_base_image.sh [-s SUITE] [-m MIRROR] [-c CACHE_DIR] [-C CERT]... TAG
#
#   -s SUITE      Debian suite (default: trixie, Debian 13, whose python3 is 3.13)
#   -m MIRROR     Debian mirror (default: http://deb.debian.org/debian)
#   -c CACHE_DIR  keep the root file system tarball there and reuse it when the
#                 suite, package list and certificates are unchanged (skips debootstrap)
#   -C CERT       also trust this CA certificate (PEM), e.g. a site proxy's; repeatable
#
# Needs root, debootstrap and a docker client (DOCKER_HOST is honoured; set
# DOCKER to use another client binary). The image holds what fe2x's Dockerfile
# needs from the base: python3 with venv and headers, gcc, libc headers, make.
set -eu

suite=trixie
mirror=http://deb.debian.org/debian
cache_dir=
docker=${DOCKER:-docker}
packages=python3,python3-venv,python3-dev,gcc,libc6-dev,make,ca-certificates
usage="usage: $0 [-s SUITE] [-m MIRROR] [-c CACHE_DIR] [-C CERT]... TAG"

work=$(mktemp -d "${TMPDIR:-/tmp}/fe2x-base.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/certs"
ncerts=0

while getopts s:m:c:C: opt; do
    case $opt in
        s) suite=$OPTARG ;;
        m) mirror=$OPTARG ;;
        c) cache_dir=$OPTARG ;;
        C) ncerts=$((ncerts + 1)); cp "$OPTARG" "$work/certs/extra-$ncerts.crt" ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -ne 1 ]; then
    echo "$usage" >&2
    exit 2
fi
tag=$1

# The cache key names the suite, the packages and the certificates; a change rebuilds.
key=$( (printf '%s %s\n' "$suite" "$packages"; cat "$work"/certs/*.crt 2>/dev/null || true) \
    | sha256sum | cut -c1-16)
tarball=$work/rootfs.tar
if [ -n "$cache_dir" ] && [ -f "$cache_dir/debian-$suite-$key.tar" ]; then
    tarball=$cache_dir/debian-$suite-$key.tar
    echo "using cached root file system $tarball"
else
    rootfs=$work/rootfs
    # minbase: only essential packages, apt and the list above (~40 s).
    debootstrap --variant=minbase --components=main --include="$packages" \
        "$suite" "$rootfs" "$mirror"
    # Slim: drop downloaded .debs, package lists, docs and man pages.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    # Extra CAs join the system store, which pip (truststore) and OpenSSL use.
    if [ "$ncerts" -gt 0 ]; then
        cp "$work"/certs/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates
    fi
    # Package lists come back with `apt-get update` inside the build.
    printf 'deb %s %s main\n' "$mirror" "$suite" > "$rootfs/etc/apt/sources.list"
    if [ -n "$cache_dir" ]; then
        mkdir -p "$cache_dir"
        tarball=$cache_dir/debian-$suite-$key.tar
    fi
    tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
fi

"$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$tag"
echo "built $tag"
