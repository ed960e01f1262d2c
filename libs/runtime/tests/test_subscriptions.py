"""Subscribing to the SQLite event log: the subscription contract."""

from __future__ import annotations

from libs.runtime.tests.subscription_contract import SubscriptionContract


class TestSqliteSubscriptions(SubscriptionContract):
    """The contract, on the `log` of conftest.py: a SQLite file in a temporary directory."""
