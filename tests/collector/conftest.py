"""Fixtures of the collector tests: the loopback SMTP server and its mail worker."""

from tests.collector.mail_server import mail_settings, mail_worker, smtp

__all__ = ["mail_settings", "mail_worker", "smtp"]
