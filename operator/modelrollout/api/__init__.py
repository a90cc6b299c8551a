"""The ModelDeployment contract: pydantic models of spec and status, label keys, the CRD renderer.

Data only: every other layer may import it, and it imports none of them (only pydantic, yaml and
the standard library).

- `resources`: group, version, kind and names; `ModelDeployment`, the whole object.
- `spec`: `ModelDeploymentSpec` and its small sections (model, gpuPool, smokeTest, rollback).
- `pods`, `routing`, `strategies`, `analyses`: the larger sections (template, traffic,
  strategy, analysis).
- `status`: `ModelDeploymentStatus`, `Phase`, conditions, per-metric results, history.
- `verdicts`: `Verdict`, shared by status and the judges.
- `commands`: the `modelrollout.io/command` annotation, parsed and rendered.
- `labels`: label and annotation keys, the finalizer, env var names, `Track`.
- `durations`: "30s"/"5m"/"1h30m" strings and `parse_duration`.
- `wire`: the shared model bases and `Rule`, a CEL rule with its Python twin.
- `crd`: renders crds/modeldeployments.yaml from all of the above.
"""
