"""Where alert events go: the log, a Python callback, a webhook, Alertmanager, Apprise.

Each implements :class:`~peerscope.alerting.Notifier` and is given to a
:class:`~peerscope.alerting.Dispatcher`, which sends from a task per notifier with a
timeout and retries. docs/ALERTS.md ("Notifiers") describes what each sends.
"""

from peerscope.alerting.notifiers.alertmanager import AlertmanagerNotifier
from peerscope.alerting.notifiers.apprise import AppriseNotifier
from peerscope.alerting.notifiers.callback import CallbackNotifier
from peerscope.alerting.notifiers.log_lines import LogNotifier
from peerscope.alerting.notifiers.webhook import WebhookNotifier

__all__ = [
    "AlertmanagerNotifier",
    "AppriseNotifier",
    "CallbackNotifier",
    "LogNotifier",
    "WebhookNotifier",
]
