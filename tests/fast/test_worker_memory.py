"""The words --debug prints for a worker's memory (gradcheck/isolation/memory.py)."""

from gradcheck.isolation.memory import described

MB = 2**20


def test_the_peak_and_what_the_check_added_to_the_start():
    assert described(200 * MB, 812 * MB) == (
        "peak memory of its worker 812 MB resident, 612 MB more than when the check started"
    )


def test_without_a_start_only_the_peak_and_without_a_peak_nothing():
    assert described(None, 1_433 * MB) == "peak memory of its worker 1,433 MB resident"
    assert described(200 * MB, None) is None


def test_a_peak_read_below_the_start_adds_nothing():
    assert described(300 * MB, 290 * MB).endswith(", 0 MB more than when the check started")
