#!/usr/bin/env bash
# Regenerate the Python code of every .proto file under buildkit_py/:
#   X.proto -> X_pb2.py + X_pb2.pyi, plus X_pb2_grpc.py when X.proto defines a service.
# Protos compile relative to the root, so one proto imports another as
# "buildkit_py/llb/ops.proto" and the generated code imports "buildkit_py.llb.ops_pb2".
# Usage: scripts/gen-proto.sh [OUT_DIR [ROOT]]
#   OUT_DIR defaults to ROOT (regenerate in place); ROOT defaults to the repository.
set -euo pipefail
PY=${PYTHON:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "${2:-$repo}" && pwd)
out=${1:-$root}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
# The well-known types (google/protobuf/*.proto) ship inside grpcio-tools.
wkt=$($PY -c 'import os, grpc_tools; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')

mapfile -t protos < <(find buildkit_py -name '*.proto' -type f | LC_ALL=C sort)
for proto in "${protos[@]}"; do
    args=(-I . -I "$wkt" --python_out="$out" --pyi_out="$out")
    if grep -qE '^[[:space:]]*service[[:space:]]' "$proto"; then
        args+=(--grpc_python_out="$out")
    fi
    $PY -m grpc_tools.protoc "${args[@]}" "$proto"
done
