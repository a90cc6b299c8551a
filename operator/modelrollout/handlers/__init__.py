"""The kopf wiring: thin handlers that observe, ask the core, apply through adapters, write status."""
