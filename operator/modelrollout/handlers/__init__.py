"""The kopf wiring: thin handlers that observe, ask the core, apply through adapters, write status.

Importing this package registers every handler; `kopf run -m modelrollout.handlers` and
`python -m modelrollout` both do.
"""

from modelrollout.handlers import probes, progression, startup

__all__ = ["probes", "progression", "startup"]
