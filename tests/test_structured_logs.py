"""JSON log lines carry the ModelDeployment and revision, also from worker threads of a tick."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from modelrollout import structured_logs


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structured_logs.JsonFormatter())
    logger = logging.getLogger("test.structured")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, stream


async def test_lines_name_the_rollout_even_from_worker_threads() -> None:
    logger, stream = capture()

    async def tick() -> None:
        structured_logs.CURRENT.set(structured_logs.Subject("ml", "scorer", "7b21aa0c4e"))
        logger.info("observed %d revisions", 2)
        await asyncio.to_thread(logger.warning, "from a worker thread")

    await asyncio.create_task(tick())
    logger.info("outside any tick")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["observed 2 revisions", "from a worker thread", "outside any tick"]
    assert all(line["modeldeployment"] == "scorer" and line["revision"] == "7b21aa0c4e" for line in lines[:2])
    assert "modeldeployment" not in lines[2]
    assert lines[1]["level"] == "WARNING" and lines[0]["logger"] == "test.structured"


def test_kopf_object_references_fill_the_fields() -> None:
    logger, stream = capture()
    logger.info("handler ran", extra={"k8s_ref": {"kind": "ModelDeployment", "namespace": "ml", "name": "scorer"}})
    line = json.loads(stream.getvalue())
    assert (line["namespace"], line["modeldeployment"]) == ("ml", "scorer")


def test_exceptions_are_kept_in_one_line() -> None:
    logger, stream = capture()
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("tick failed")
    text = stream.getvalue()
    assert text.count("\n") == 1 and "ValueError: boom" in json.loads(text)["exception"]
