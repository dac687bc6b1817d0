#!/usr/bin/env bash
# One-time system set-up for building osteoai on Debian/Ubuntu (run as root or with sudo).
#  - a C/C++ toolchain and pkg-config; libclang for lightgbm3's bindgen;
#  - CMake >= 3.28 for LightGBM 4.7 (Debian 12 ships 3.25): PyPI's cmake in /opt/osteoai-cmake,
#    linked as /usr/local/bin/cmake, when the cmake on PATH is older;
#  - tmux, procps (pgrep) and e2fsprogs (chattr) for the end-to-end dashboard and journal tests,
#    and Mesa's Vulkan drivers (wgpu's software adapter,
#    used by the GPU-path test on machines without a GPU), and qemu-user, whose emulated CPUs
#    without AVX-512 / AVX run the binary in tests/cpu_fallback.rs.
set -euo pipefail

pkgs=(build-essential pkg-config libclang-dev mesa-vulkan-drivers tmux procps e2fsprogs python3-venv git qemu-user)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake_ok() {
  local v
  v=$("$1" --version 2>/dev/null | head -n1 | grep -oE '[0-9]+\.[0-9]+' | head -n1) || return 1
  [ -n "$v" ] || return 1
  local major=${v%%.*} minor=${v#*.}
  [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 28 ]; }
}
if ! cmake_ok "$(command -v cmake || echo /nonexistent)"; then
  echo "setup: installing CMake >= 3.28 from PyPI into /opt/osteoai-cmake"
  python3 -m venv /opt/osteoai-cmake
  /opt/osteoai-cmake/bin/pip install -q "cmake>=3.28,<5"
  ln -sf /opt/osteoai-cmake/bin/cmake /usr/local/bin/cmake
fi
echo "setup: ok ($(cmake --version | head -n1), $(rustc --version 2>/dev/null || echo 'no rustc: install Rust >= 1.95 with rustup'))"
