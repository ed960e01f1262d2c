"""GitHub's REST API, called the way GitHub asks integrations to call it: one client for every service."""

from conveyor_github._apps import AppCredentials, InstallationTokens, app_jwt
from conveyor_github._client import Clock, GitHubAPI, GitHubError, Sleep, Stale

__all__ = ["AppCredentials", "Clock", "GitHubAPI", "GitHubError", "InstallationTokens", "Sleep", "Stale", "app_jwt"]
