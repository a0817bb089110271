#!/bin/bash
# The baseline: the recovery hook of the incident reports (quantum_stream_recover.sh), rebuilt
# from their description for side-by-side measurement. Not part of quantum-watchdog.
#   TESTNET check by file test; XGROUP CREATE … MKSTREAM; XAUTOCLAIM … recover-$$ 60000 0 COUNT 200;
#   XINFO CONSUMERS, and DELCONSUMER for idle > 1h with pending = 0.
# Environment: SOCK (redis unix socket), STREAM, GROUP, TESTNET_FILE, LOG.
R="redis-cli -s $SOCK"
log() { echo "$(date '+%F %T') | $*" >> "${LOG:-/dev/null}"; }
if [ -f "${TESTNET_FILE:-/etc/quantum/testnet.env}" ]; then READONLY=0; log "TESTNET mode detected"; else READONLY=1; log "LIVE mode detected - read-only"; fi
$R XGROUP CREATE "$STREAM" "$GROUP" 0 MKSTREAM >/dev/null 2>&1
claimed=$($R XAUTOCLAIM "$STREAM" "$GROUP" "recover-$$" 60000 0 COUNT 200 JUSTID | sed -n '2,$p' | grep -c . || true)
log "Claimed $claimed stale messages for re-processing"
deleted=0
if [ "$READONLY" = 0 ]; then
    $R XINFO CONSUMERS "$STREAM" "$GROUP" | paste - - - - - - | while read -r _ name _ pending _ idle; do
        if [ "$idle" -gt 3600000 ] && [ "$pending" = 0 ]; then
            $R XGROUP DELCONSUMER "$STREAM" "$GROUP" "$name" >/dev/null && deleted=$((deleted + 1))
        fi
    done
fi
log "Deleted $deleted zombie consumers"
