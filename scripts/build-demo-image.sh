#!/usr/bin/env bash
# Builds the DEMO image, an ordinary OCI image made from Debian packages:
#   <out>/s2z-demo.oci.tar  oci-archive, tag "demo": the Debian layer of
#                           <rootfs>/debian-test.oci.tar (scripts/build-rootfs.sh:
#                           bookworm minbase + python3-minimal, busybox, coreutils,
#                           user app) and one app layer: /app/counter.py, a
#                           python3 HTTP server on 8080 that counts its requests
#                           in memory (so a wake that lost the VM's state shows).
#   config: Entrypoint python3 -u /app/counter.py, User app, WorkingDir /app,
#           Env GREETING, StopSignal SIGINT (python's KeyboardInterrupt: the app
#           says goodbye), ExposedPorts 8080/tcp.
# Usage: scripts/build-demo-image.sh <rootfs-dir> <out-dir>
# Cached: does nothing when <out>/.stamp matches this script and the base.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 <rootfs-dir> <out-dir>" >&2; exit 2; }
base=$1/debian-test.oci.tar
out=$2
image=$out/s2z-demo.oci.tar
[ -f "$base" ] || { echo "build-demo-image: no base image $base (run scripts/build-rootfs.sh)" >&2; exit 1; }

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
key=$(cat "$0" "$base" | sha256sum | cut -d' ' -f1)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$key" ] && [ -f "$image" ]; then
  echo "build-demo-image: up to date: $image"
  exit 0
fi

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
skopeo copy --quiet "oci-archive:$base" "oci:$work/oci:demo"
umoci unpack --image "$work/oci:demo" "$work/bundle" >/dev/null
mkdir -p "$work/bundle/rootfs/app"
cat > "$work/bundle/rootfs/app/counter.py" <<'PY'
# The s2z-kata demo app: counts requests in memory and says where it runs.
# Plain sockets: the image has python3-minimal, without http.server.
import os, signal, socket, sys, time

count = 0
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", 8080))
server.listen(64)
print("counter app: serving on :8080 as uid %d" % os.getuid(), flush=True)
try:
    while True:
        conn, peer = server.accept()
        with conn:
            request = conn.recv(4096).decode(errors="replace")
            count += 1
            body = "%s: request %d, served by %s at guest time %s\n" % (
                os.environ.get("GREETING", "hello"), count, socket.gethostname(),
                time.strftime("%H:%M:%S", time.gmtime()))
            conn.sendall(("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(body), body)).encode())
            print("served request %d" % count, flush=True)
            sys.stderr.write("access: %s %s\n" % (peer[0], request.split("\r\n", 1)[0]))
except KeyboardInterrupt:
    print("counter app: stop signal received after %d requests, goodbye" % count, flush=True)
PY
chmod 0644 "$work/bundle/rootfs/app/counter.py"
umoci repack --image "$work/oci:demo" "$work/bundle"
umoci config --image "$work/oci:demo" --clear=config.entrypoint --clear=config.cmd \
  --config.entrypoint python3 --config.entrypoint -u --config.entrypoint /app/counter.py \
  --config.user app --config.workingdir /app --config.env GREETING=hello-from-an-oci-image \
  --config.stopsignal SIGINT --config.exposedports 8080/tcp
skopeo copy --quiet "oci:$work/oci:demo" "oci-archive:$work/image.oci.tar:demo"
chmod 0644 "$work/image.oci.tar"
mv "$work/image.oci.tar" "$image"
echo "$key" > "$out/.stamp"
echo "build-demo-image: built $image ($(du -h "$image" | cut -f1))"
