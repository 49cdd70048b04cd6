"""The collector pause around scoring puts the collector back as it found it, and freezes what outlived it only
in processes that end with their work (the command line, a --jobs worker)."""

from __future__ import annotations

import gc

import pytest

from pdg_eval import collector
from pdg_eval.collector import collector_paused


@pytest.mark.parametrize("freeze", [False, True])
def test_collector_is_off_inside_and_back_on_after(monkeypatch, freeze):
    monkeypatch.setattr(collector, "_freeze_after_pauses", freeze)
    gc.unfreeze()
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        kept = [[i] for i in range(1000)]
    try:
        assert gc.isenabled()
        assert (gc.get_freeze_count() >= len(kept)) == freeze  # a library call leaves the generations alone
    finally:
        gc.unfreeze()


def test_a_disabled_collector_stays_disabled():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_garbage_from_before_the_pause_is_collected_not_frozen(monkeypatch):
    import weakref

    class Node:
        pass

    monkeypatch.setattr(collector, "_freeze_after_pauses", True)
    gc.unfreeze()
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle, unreachable once the names go
    gone = weakref.ref(a)
    del a, b
    try:
        with collector_paused():
            pass
        assert gone() is None
    finally:
        gc.unfreeze()
