"""Alerting as the ``[alerts]`` settings describe it: the rules to run and the notifiers."""

from __future__ import annotations

from peerscope.alert_settings import AlertSettings
from peerscope.alerting import notifiers
from peerscope.alerting.dispatch import Dispatcher, Notifier
from peerscope.alerting.notifiers import AlertmanagerNotifier, LogNotifier, WebhookNotifier
from peerscope.alerting.service import Alerting
from peerscope.monitor import Monitor

__all__ = ["configured_alerting", "configured_notifiers"]


def configured_notifiers(settings: AlertSettings) -> list[Notifier]:
    """The log (if ``log``), each webhook, each Alertmanager, and one Apprise notifier for
    all ``apprise_urls``."""
    timeout = settings.notify_timeout_s
    told: list[Notifier] = []
    if settings.log:
        told.append(LogNotifier())
    told.extend(WebhookNotifier(url, timeout_s=timeout) for url in settings.webhooks)
    told.extend(
        AlertmanagerNotifier(url, resend_s=settings.alertmanager_resend_s, timeout_s=timeout)
        for url in settings.alertmanager_urls
    )
    if settings.apprise_urls:
        urls = [url.get_secret_value() for url in settings.apprise_urls]
        told.append(notifiers.AppriseNotifier(urls))  # Apprise is imported only now
    return told


def configured_alerting(monitor: Monitor) -> Alerting | None:
    """An :class:`Alerting` over ``monitor`` as its settings' ``alerts`` group says (None
    when ``alerts.enabled`` is off)."""
    settings = monitor.settings.alerts
    if not settings.enabled:
        return None
    dispatcher = Dispatcher(
        configured_notifiers(settings),
        queue_size=settings.notify_queue_size,
        timeout_s=settings.notify_timeout_s,
        retries=settings.notify_retries,
        backoff_s=settings.notify_backoff_s,
    )
    return Alerting(
        monitor,
        settings.active_rules(),
        dispatcher=dispatcher,
        history_size=settings.history_size,
    )
