#!/bin/sh
# Prints the greeting, who runs it, and that jq from the image's own layer works.
echo "$GREETING as $(id -un) in $(pwd)"
jq -n --arg g "$(cat /etc/hello/greeting 2>/dev/null || echo none)" '{greeting: $g}' -c
