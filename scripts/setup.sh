#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for building and testing buildkit-py:
# Debian packages, the Python package with its test extras, binfmt_misc for
# foreign-architecture RUN, and busybox binaries that tests turn into base images.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
# gcc + libc6-dev: the wheel build compiles the `bkpy` client (launcher/bkpy.c).
APT_PKGS=(busybox-static qemu-user-static docker-registry skopeo umoci runc
          binfmt-support zstd xz-utils iproute2 dpkg-dev git openssh-server openssh-client
          gcc libc6-dev)
CACHE=${BKPY_TEST_CACHE:-/var/cache/bkpy-test}

need=()
for p in "${APT_PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    need_update=1
fi
if [ ${#need[@]} -gt 0 ] || [ -n "${need_update:-}" ] || [ ! -s "$CACHE/busybox-arm64" ]; then
    echo "setup: apt-get update" >&2
    apt-get update -qq
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The distribution registry's and sshd's packages start system services we do not use
# (the Git source tests run their own sshd on 127.0.0.1).
systemctl disable --now docker-registry >/dev/null 2>&1 || true
systemctl disable --now ssh >/dev/null 2>&1 || true

# Static busybox for amd64 (from the installed package) and arm64 (downloaded .deb).
mkdir -p "$CACHE"
if [ ! -s "$CACHE/busybox-amd64" ]; then
    cp /bin/busybox "$CACHE/busybox-amd64"
fi
if [ ! -s "$CACHE/busybox-arm64" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root busybox-static:arm64 >/dev/null && dpkg-deb -x ./*.deb x)
    cp "$tmp/x/bin/busybox" "$CACHE/busybox-arm64"
    rm -rf "$tmp"
fi

# binfmt_misc with qemu for arm64: Debian's argv0-preserving entry (flags OPF), so
# busybox-style multi-call binaries see their applet name; fix-binary (F) so it works
# inside containers. An older entry without P (from earlier versions of this script) is
# replaced.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
if [ -e "$entry" ] && ! grep -q '^flags: .*P' "$entry"; then
    echo -1 > "$entry"
fi
if [ ! -e "$entry" ]; then
    if [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
        cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
    else
        printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
            > /proc/sys/fs/binfmt_misc/register
    fi
fi

# The project itself, editable, with test tools; re-installed when pyproject.toml, the
# compiled client's source or the checkout's location changes, or when `bkpy` is not
# the compiled client.
stamp="$CACHE/install.stamp"
want="$(pwd) $(cat pyproject.toml hatch_build.py launcher/bkpy.c | sha256sum | cut -c1-16)"
scripts=$($PY -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! command -v bkpy >/dev/null \
   || [ "$(head -c 4 "$scripts/bkpy" 2>/dev/null | od -An -c | tr -d ' ')" != '177ELF' ] \
   || ! (cd / && $PY -c 'import buildkit_py, bkpy_runc, sys
sys.exit(not buildkit_py.__file__.startswith(sys.argv[1] + "/"))' "$(pwd)") 2>/dev/null; then
    echo "setup: pip install -e .[test]" >&2
    $PY -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
        | grep -v '^WARNING: Location' || true
    echo "$want" > "$stamp"
fi
(cd / && $PY -c 'import buildkit_py, bkpy_runc') || { echo "setup: install failed" >&2; exit 1; }
[ "$(head -c 4 "$scripts/bkpy" | od -An -c | tr -d ' ')" = '177ELF' ] \
    || { echo "setup: $scripts/bkpy is not the compiled client (no C compiler?)" >&2; exit 1; }
# Byte-compile once: with PYTHONDONTWRITEBYTECODE set, every CLI and runtime start would
# otherwise recompile all modules (~0.4 s a build, ~30 ms a RUN).
$PY -m compileall -q -j 0 buildkit_py runtime/bkpy_runc >/dev/null
# Likewise the compiled methods of the package's dataclasses (buildkit_py/cli/dataclass_code.py).
(cd / && $PY -m buildkit_py.cli.write_dataclass_code) || { echo "setup: dataclass table failed" >&2; exit 1; }
echo "setup: ok" >&2
