"""The e2e load generator: a small stand-in for a Gateway's data plane.

No Gateway implementation or Istio proxy can run without containers, so this process plays
their part: it sends a steady Poisson stream of predictions to every ModelDeployment or
Service annotated `e2e.modelrollout.io/rps: "n"`, split the way that target's HTTPRoute or
VirtualService says (header matches, weights, RequestMirror / mirror), to the model server
processes that stand in for the pods. `e2e.modelrollout.io/headers` draws headers and cookies
per request (`x-cohort=b@30`: 30 % of the requests carry `x-cohort: b`). What the operator
writes into the routes is therefore what the model servers, and so Prometheus, see.

Modules: `routing` (pure: cluster objects + pods in, a routing table out), `endpoints` (the
pod runner's endpoints file), `apiserver` (reads the objects), `sender` (the sending loop,
which takes any routing table), `metrics` (its own counters), `__main__` (the CLI and the
once-a-second refresh).
"""
