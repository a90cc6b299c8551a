"""The e2e model server: a small real model behind HTTP, one process per faked pod.

The e2e world runs no containers, so every Running pod of a model server is stood in for by
one of these processes on a loopback port. It serves a logistic regression trained at start on
the Wisconsin breast-cancer data that ships inside scikit-learn, exports the `generic` preset's
Prometheus metrics, and can be told through its environment to add latency, errors, skewed
predictions or a crash, so that the operator's judges have real evidence to work on, and how
often an answer converts (`model_outcomes_total`), the outcome an A/B test compares.

Modules: `dataset` (the data and realistic request bodies), `model` (training and scoring),
`faults` (the FAULT_* settings and OUTCOME_RATE), `metrics` (the metric families), `server`
(the aiohttp app), `process` (start, wait for and stop a server process, for tests and other
harness code).
"""
