"""The route the Train tab's page asks once a second: a key that moves whenever a training job does."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.testclient import TestClient

from explorer import jobs, train_ticks


def test_the_key_moves_when_a_job_changes_and_names_every_job(tmp_path):
    one = jobs.TrainingJob(tmp_path / "a", prestart=False)
    other = jobs.TrainingJob(tmp_path / "b", prestart=False)
    try:
        key = lambda job: f"{job.serial}:{job.run_id}:{job.version}"  # noqa: E731
        before = jobs.version_key()
        assert key(one) in before and key(other) in before
        assert jobs.version_key() == before  # nothing changed: the same text, so the page asks Gradio nothing
        one.version += 1  # what every change of a job does (a step logged, a preview, a save, a new status)
        moved = jobs.version_key()
        assert moved != before and key(one) in moved
        other.run_id += 1  # a new run in the other job
        assert jobs.version_key() != moved
    finally:
        one.shutdown()
        other.shutdown()


def test_the_route_answers_the_key_uncached():
    client = TestClient(Starlette(routes=train_ticks.routes()))
    r = client.get(train_ticks.PATH)
    assert r.status_code == 200 and r.text == jobs.version_key()
    assert r.headers["cache-control"] == "no-store" and r.headers["content-type"].startswith("text/plain")
