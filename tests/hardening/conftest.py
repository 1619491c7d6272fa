"""The workflow's fixtures (a store on a controllable clock, fakes of the ports), for the hardening tests."""

from tests.workflow.conftest import channel, classifier, clock, probe, sink, wstore

__all__ = ["channel", "classifier", "clock", "probe", "sink", "wstore"]
