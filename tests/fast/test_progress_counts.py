"""Progress counts a stage's steps and tells its listener at most every interval, and always the last count."""

from __future__ import annotations

from gradcheck.progress import Progress


def test_progress_tells_the_total_at_once_and_the_last_count_however_fast_the_steps():
    heard: list = []
    progress = Progress(1000, lambda done, total: heard.append((done, total)), interval=60.0)
    for _ in range(1000):
        progress.advance()
    progress.close()
    assert heard == [(0, 1000), (1000, 1000)]


def test_progress_tells_every_interval_and_the_count_where_a_stage_stopped():
    heard: list = []
    progress = Progress(10, lambda done, total: heard.append((done, total)), interval=0.0)
    progress.advance()
    progress.skip(4)
    progress.close()
    assert heard == [(0, 10), (1, 10), (5, 10)]
