#!/usr/bin/env bash
# Install everything the box and its tests need into .venv (and the Debian packages, as root).
#   scripts/install.sh          runtime + test tools
# Debian packages: espeak-ng (the voice), sox (fixtures), baresip-core and sip-tester (the
# softphone and sipp used as callers in the end-to-end phone tests), libportaudio2 (mic demo),
# postgresql (the tests start a throwaway server), kamailio (the proxy of the scale-out test),
# chromium (the test that looks at the batch report in a real browser).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends \
    espeak-ng sox baresip-core sip-tester libportaudio2 postgresql kamailio chromium >/dev/null
else
  echo "warning: no apt-get; install espeak-ng, baresip, sipp and PortAudio yourself" >&2
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev,postgres]"
# Silero VAD's ONNX model (MIT): the wheel's metadata asks for torch, which the box never
# imports (it runs the .onnx on onnxruntime), so install the wheel without its dependencies.
.venv/bin/python -m pip install -q --no-deps silero-vad==6.2.3
# The acoustic model rewritten for a cheaper step (weights dequantised once, positional rows
# projected once for all calls), kept in asr_models/ (assistant/asr/fold.py; the box would
# otherwise build it at its first start).
.venv/bin/python -m assistant.asr.fold
