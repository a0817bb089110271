#!/bin/bash
# Prints the Debian mirror apt already uses (deb822 `URIs:` or one-line `deb` entries).
set -euo pipefail
m=$( (grep -rhE '^[[:space:]]*(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true) \
    | grep -oE 'https?://[^ ]+/debian/?' | head -1 || true)
[ -n "$m" ] || { echo "mirror.sh: no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }
echo "${m%/}"
