"""A training run in a process of its own, in a real browser: killed outright, it ends as a failed run on its
visitor's Train page, and the server (the same process, its memory not grown by the run's) serves everyone else."""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

from .browsing import FOX, expect, main, settle, start_training, upload_text, visit, written_text


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def runs_of(server_pid: int) -> list[int]:
    """The server's training runs: the processes its fork server has forked."""
    servers = [p for p in children(server_pid) if b"forkserver" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return [run for server in servers for run in children(server)]


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    path = f"/proc/{pid}/{'status' if field == 'VmRSS' else 'smaps_rollup'}"
    line = next(line for line in Path(path).read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def test_a_killed_run_fails_on_its_page_and_the_server_carries_on(served, browser):
    url, server = served
    alice = visit(browser, url)
    upload_text(alice, "fox.txt", FOX)
    before_mb = memory_mb(server.pid)
    start_training(alice)
    expect(main(alice).get_by_text("What the model writes at step")).to_be_visible()   # it trains
    [run] = runs_of(server.pid)
    run_mb = memory_mb(run, "Pss")
    os.kill(run, signal.SIGKILL)
    expect(main(alice).get_by_text("The run's process was killed by SIGKILL (the machine may have run out of "
                                   "memory) before it finished")).to_be_visible(timeout=10_000)
    expect(main(alice).get_by_role("button", name="Stop")).to_have_count(0)

    assert server.poll() is None and runs_of(server.pid) == []   # the same server process; no run left
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as health:
        assert health.status == 200
    # The run's memory was its own process's: the server holds no more than a page's worth beyond before.
    assert run_mb > 100 and memory_mb(server.pid) - before_mb < 60, (run_mb, before_mb, memory_mb(server.pid))

    bob = visit(browser, url)   # another visitor writes as ever
    expect(bob.get_by_text("written as the page opened")).to_be_visible(timeout=30_000)
    main(bob).get_by_role("button", name="Write").click()
    expect(bob.get_by_text("written as the page opened")).to_have_count(0, timeout=30_000)
    settle(bob)
    assert written_text(bob).startswith("The ") and len(written_text(bob)) > 40
