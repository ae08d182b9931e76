#!/usr/bin/env bash
# Makes a test CA and a server certificate for 127.0.0.1, ::1 and localhost
# (P-256, valid two days) in DIR, with openssl (installed from apt when
# missing):
#   DIR/ca.pem               the CA certificate, to trust
#   DIR/server.pem           the server certificate (signed by the CA)
#   DIR/server.key           its private key (PKCS#8 PEM)
# and prints the base64 SHA-256 of the server key's SubjectPublicKeyInfo
# (what Chromium's --ignore-certificate-errors-spki-list takes).
#   usage: scripts/test-certs.sh DIR
set -euo pipefail
DIR=${1:?usage: $0 DIR}
mkdir -p "$DIR"

if ! command -v openssl >/dev/null; then
    echo "== installing openssl" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y openssl >&2
fi

(
    cd "$DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=hubbub test CA" -keyout ca.key -out ca.pem \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout server.key -out server.csr
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem
) >"$DIR/openssl.log" 2>&1 || { cat "$DIR/openssl.log" >&2; exit 1; }

openssl x509 -in "$DIR/server.pem" -pubkey -noout |
    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
