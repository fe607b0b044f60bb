#!/usr/bin/env bash
# Installs every Debian package OpenNVT needs to build, run, test and benchmark.
# Idempotent: does nothing when everything is present; runs `apt-get update` once otherwise.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache
  gsoap libgsoap-dev
  libssl-dev openssl
  libxml2-dev libxml2-utils
  libcmocka-dev
  curl wrk valgrind iproute2
  uuid-runtime
  libavcodec-dev libavformat-dev libavdevice-dev libswscale-dev libavutil-dev
  ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-rtsp libgstrtspserver-1.0-dev sysstat
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
