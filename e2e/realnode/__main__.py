"""`python -m e2e.realnode up|down|status|build` (E2E_DIR and E2E_PORT_OFFSET as for `e2e.cluster`)."""

import sys

from e2e.realnode.node import main

sys.exit(main())
