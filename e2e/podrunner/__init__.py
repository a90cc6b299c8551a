"""The pod runner of the e2e world: kwok's pods become real model-server processes."""
