#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine needs to build, test and benchmark Sleeve.
#
#   scripts/setup.sh            system packages + Rust components + Python peers
#   scripts/setup.sh --ci       system packages needed to build and test only
#   scripts/setup.sh --cross    also the aarch64 cross toolchain and qemu (Raspberry Pi builds)
#
# Idempotent: packages already present are skipped. Needs root (or sudo) for apt-get.
set -euo pipefail

mode=full
cross=0
for arg in "$@"; do
  case "$arg" in
    --ci) mode=ci ;;
    --cross) cross=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# System libraries behind -sys crates:
#  - libclang-dev, clang: bindgen for nokhwa's V4L2 bindings (edge camera support)
#  - pkg-config, libfontconfig1-dev, libfreetype-dev, fonts-dejavu-core: plotters' text
#  - mosquitto: the MQTT broker the edge tests start on a loopback port (skipped without)
packages=(build-essential pkg-config libclang-dev clang libfontconfig1-dev libfreetype-dev fonts-dejavu-core mosquitto)
if [ "$mode" = full ]; then
  # scripts/test-web-page.sh: the staff page in headless Chromium over the DevTools
  # protocol (python3-websocket), and curl for the scripts that poll the kiosk's API.
  packages+=(chromium python3-websocket curl)
fi
if [ "$cross" = 1 ]; then
  packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  say "system packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: cargo not found. Install Rust (https://rustup.rs), then re-run." >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component add clippy rustfmt >/dev/null 2>&1 || true
  if [ "$cross" = 1 ]; then
    say "adding the aarch64-unknown-linux-gnu target"
    rustup target add aarch64-unknown-linux-gnu
  fi
fi

if [ "$mode" = full ]; then
  # Python peers for the benchmarks and the ONNX cross-check (never used by the tests).
  if python3 -c 'import onnxruntime, onnx, numpy, PIL' >/dev/null 2>&1; then
    say "python peers present (onnxruntime, onnx, numpy, pillow)"
  else
    say "installing python peers: onnxruntime onnx numpy pillow"
    python3 -m pip install --quiet onnxruntime onnx numpy pillow \
      || echo "setup.sh: warning: could not install onnxruntime; benchmarks will skip the peer" >&2
  fi
fi
say "setup done"
