#!/bin/sh
# stage.sh STAGE: the enforcing-against-degraded scenario goes into this
# guest too (as /scenario/modes.sh).
here=$(cd "$(dirname "$0")" && pwd)
install -m 755 "$here/../modes/guest-test.sh" "$1/scenario/modes.sh"
