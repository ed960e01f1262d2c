"""The runner's connections to the machine: processes, the checkout, and the log."""

from conveyor_runner_agent.adapters.checkout import CheckoutError, checkout
from conveyor_runner_agent.adapters.logs import LogPublisher
from conveyor_runner_agent.adapters.process import TRACKING_VARIABLE, Grace, kill_tracked, run_process

__all__ = ["TRACKING_VARIABLE", "CheckoutError", "Grace", "LogPublisher", "checkout", "kill_tracked", "run_process"]
