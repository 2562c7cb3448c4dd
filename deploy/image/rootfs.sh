#!/bin/sh
# The runtime image's whole file system, assembled in the Dockerfile's build
# stage (and by `cargo xtask deploy-check`, which runs the gateway inside it):
# the gateway binary without its symbol table, exactly the shared libraries
# `ldd` names for it (glibc, libm, libgcc_s and the loader, copied to the
# paths the binary looks them up at), the CA bundle the AWS SDK's TLS reads,
# a passwd/group naming uid 65532 (nonroot), `hosts: files dns` for glibc's
# resolver, a world-writable /tmp and the home the records file goes in.
# Nothing else: no shell, no package manager, no other library.
#
# usage: rootfs.sh <gateway binary> <output directory>
# It writes two trees: <out>/root, the image's file system owned by root,
# and <out>/home, which the Dockerfile copies to /home owned by uid 65532
# (`COPY --chown`: a copy keeps modes, not owners).
set -eu
bin=$1
home=$2/home
out=$2/root
rm -rf "$out" "$home"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp" "$home/nonroot"
chmod 1777 "$out/tmp"
# Symbols only name functions in a backtrace; a panic's message and place
# (file:line) stay. 9-10 MB of the binary.
strip --strip-all -o "$out/usr/local/bin/gateway" "$bin"
# `ldd` prints `name => /path (addr)` for each library and `/path (addr)`
# for the loader (the binary's PT_INTERP, /lib64/ld-linux-x86-64.so.2 on
# x86_64, /lib/ld-linux-aarch64.so.1 on arm64).
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || { echo "rootfs.sh: ldd named no library for $bin" >&2; exit 1; }
for lib in $libs; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$out/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$out/etc/group"
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
