"""Fakes of the services outside Conveyor, shared by the tests."""
