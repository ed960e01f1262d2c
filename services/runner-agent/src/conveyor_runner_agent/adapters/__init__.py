"""The runner's connections to the machine: processes, the checkout, and the log."""

from conveyor_runner_agent.adapters.checkout import CheckoutError, checkout
from conveyor_runner_agent.adapters.logs import LogPublisher
from conveyor_runner_agent.adapters.process import run_process

__all__ = ["CheckoutError", "LogPublisher", "checkout", "run_process"]
