"""kombu's Redis transport, except that a worker whose ack did not reach Redis takes new work."""

from __future__ import annotations

from kombu.transport import redis, virtual


class QoS(redis.QoS):
    """Forget a finished message locally even when Redis did not hear its ack or reject."""

    # kombu's Redis QoS drops a delivery from its local count only after Redis answered: when the
    # network to Redis fails at that moment, the worker (prefetch 1) believes it still holds a
    # message and never fetches another, even after the network heals (celery issue #8030). Redis
    # keeps the message in its unacked index and hands it back after the visibility timeout.

    def ack(self, delivery_tag: str) -> None:
        """Acknowledge a message in Redis, and in any case forget it here."""
        try:
            self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Reject (or requeue) a message in Redis, and in any case forget it here."""
        try:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True)
            else:
                self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)


class Channel(redis.Channel):
    """A Redis channel with the QoS above."""

    QoS = QoS


class Transport(redis.Transport):
    """The Redis transport with the channel above (Celery's `broker_transport`)."""

    Channel = Channel
