"""Statistical judgement of the new version against the old: numbers in, verdicts out.

Pure like the rest of the core: no I/O, no clock, no state between ticks. The handler, every tick:

1. reads each metric from Prometheus into `samples` (per-interval increments per track since the
   canary first received traffic: the evidence carries across steps and survives restarts);
2. maps the user's metric spec to a `checks.MetricCheck` and calls `judges.judge(...)` with the
   test's share of the rollout's alpha (`verdicts.alpha_per_test`) and the `settings`;
3. combines every result with `verdicts.assess(...)` into a verdict and an action (continue,
   promote, roll back, hold), and writes each `results.MetricResult.to_status()` into
   `status.analysis[]`.

The modules: `sequential` (the e-process maths), `buckets` (histogram arithmetic), `quality` (the
data-quality gate), `decisions` (evidence -> verdict), `judges` (canary against stable), `drift`
(equality in distribution), `slo` (absolute gates), `verdicts` (combining), and the plain data
of `samples`, `checks`, `settings` and `results`.
"""
