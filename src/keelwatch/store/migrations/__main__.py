"""``python -m keelwatch.store.migrations revision "what changed"``: draft the next migration."""

import sys

from keelwatch.store.migrate import revision

if len(sys.argv) != 3 or sys.argv[1] != "revision":
    raise SystemExit('usage: python -m keelwatch.store.migrations revision "what changed"')
revision(sys.argv[2])
