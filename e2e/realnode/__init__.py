"""A real kubelet node in the local e2e world: kubelet + containerd + runc + CNI bridge on the host.

`python -m e2e.realnode up|down|status` (with the same E2E_DIR / E2E_PORT_OFFSET as `e2e.cluster`)
joins one node labelled `modelrollout.io/pool=real` to a running world; see `node.py`.
"""
