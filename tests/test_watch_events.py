"""The watcher reads the daemon's events as Docker 29 sends them: ``Type``, ``Action`` and
``Actor`` only (API 1.52 dropped ``status``, ``id`` and ``from``), as it reads 20.10's."""

from __future__ import annotations

import queue
import threading

from grader.watch import Seen, Watch


def watcher() -> Watch:
    watch = Watch.__new__(Watch)  # no daemon: only the event reading is used
    watch.seen, watch.changes = Seen(), queue.Queue()
    watch.client = None  # type: ignore[assignment]
    watch.stopped = threading.Event()
    return watch


def test_events_of_docker_29_and_of_20_10() -> None:
    watch = watcher()
    docker29 = [
        {
            "Type": "network",
            "Action": "create",
            "Actor": {"ID": "n1", "Attributes": {"name": "backend-network"}},
            "scope": "local",
            "time": 1764480000,
            "timeNano": 1764480000123456789,
        },
        {
            "Type": "container",
            "Action": "create",
            "Actor": {"ID": "p1", "Attributes": {"grader.probe": "1", "name": "probe"}},
            "time": 1764480001,
        },
        {
            "Type": "network",
            "Action": "connect",
            "Actor": {"ID": "n1", "Attributes": {"container": "p1", "name": "backend-network"}},
            "time": 1764480001,
        },
        {
            "Type": "container",
            "Action": "exec_create: sh -c env",
            "Actor": {"ID": "c9", "Attributes": {}},
            "time": 1764480002,
        },
    ]
    docker20 = {
        "status": "destroy",
        "id": "n2",
        "from": "",
        "Type": "network",
        "Action": "destroy",
        "Actor": {"ID": "n2", "Attributes": {"name": "frontend-network"}},
        "time": 1764480003,
    }
    for event in [*docker29, docker20]:
        watch._take(event)
    assert [(e["type"], e["action"], e["name"]) for e in watch.seen.timeline] == [
        ("network", "create", "backend-network"),
        ("network", "destroy", "frontend-network"),
    ]  # a probe container and what it did are not the student's; an exec is no change
    assert watch.seen.timeline[0]["time"] == "2025-11-30T05:20:00.123+00:00"
    assert watch.seen.probes == {"p1"}
