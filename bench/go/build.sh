#!/bin/sh
# Builds bench/go/bin/watchbench, lincheck, boltdump and kvbench (bench/go/<name>/main.go) against etcd 3.4's Go
# client (clientv3) as Debian packages it: golang-go (Go 1.19) and golang-etcd-server-dev (etcd 3.4's source
# with its dependencies under /usr/share/gocode). No module proxy is needed: it builds in GOPATH mode.
# Installs the two packages with apt when `go` or the etcd source is missing (needs root). Idempotent.
#
#   sh bench/go/build.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
gocode=/usr/share/gocode
if ! command -v go >/dev/null 2>&1 || [ ! -d "$gocode/src/go.etcd.io/etcd/clientv3" ]; then
  echo "build.sh: installing golang-go and golang-etcd-server-dev with apt" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go golang-etcd-server-dev
fi
mkdir -p "$here/bin"
cd "$here"
for prog in watchbench lincheck boltdump kvbench; do
  GO111MODULE=off GOPATH="$gocode" go build -o "bin/$prog" "./$prog"
  echo "built $here/bin/$prog ($(go version))" >&2
done
