"""Where alert events go: the log, a Python callback, a webhook, Alertmanager, Apprise.

Each implements :class:`~peerscope.alerting.Notifier` and is given to a
:class:`~peerscope.alerting.Dispatcher`, which sends from a task per notifier with a
timeout and retries. docs/ALERTS.md ("Notifiers") describes what each sends.
"""

from typing import TYPE_CHECKING, Any

from peerscope.alerting.notifiers.alertmanager import AlertmanagerNotifier
from peerscope.alerting.notifiers.callback import CallbackNotifier
from peerscope.alerting.notifiers.log_lines import LogNotifier
from peerscope.alerting.notifiers.webhook import WebhookNotifier

if TYPE_CHECKING:
    from peerscope.alerting.notifiers.apprise import AppriseNotifier


def __getattr__(name: str) -> Any:
    # Importing Apprise (its plugins) takes ~120 ms: only when an Apprise URL is given, not
    # at every start of `peerscope serve` or of the avatar adapter.
    if name == "AppriseNotifier":
        from peerscope.alerting.notifiers.apprise import AppriseNotifier

        return AppriseNotifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlertmanagerNotifier",
    "AppriseNotifier",
    "CallbackNotifier",
    "LogNotifier",
    "WebhookNotifier",
]
