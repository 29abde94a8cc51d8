"""Rasa's Redis lock store, with each change to a conversation's lock made atomically.

endpoints.production.yml: lock_store: type: components.lock_store.AtomicRedisLockStore

Rasa serializes the messages of one conversation with a ticket lock kept in Redis.
Rasa 3.6's RedisLockStore changes it by reading the lock, changing it in Python and
writing it back, which is safe inside one server but not between two. Measured with
tests/test_scaling.py's burst (16 messages of one visitor at once, alternating between
two servers sharing PostgreSQL and Redis), 10 bursts each:
- RedisLockStore: 6 of 10 bursts broke the conversation: 3, 6, 10 and 11 of the 16
  messages missing from the stored conversation (answered, but two servers held the
  lock at once and one's save overwrote the other's), a turn interleaved with another,
  3 events stored twice; in two earlier runs a message still had no answer after 30 s
  and after 150 s.
- this class: 10 of 10 bursts whole (16 turns, 85 events each, in order).
Here every change to the lock is a Redis transaction (WATCH/MULTI/EXEC, retried when
another server changed the lock meanwhile), so the queue is the same whichever server reads it.
"""
from __future__ import annotations

import json
from typing import Callable, Optional, Text, Tuple, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

T = TypeVar("T")
KEEP, SAVE, DELETE = "keep", "save", "delete"
# (what to do with the lock, what the caller gets back)
Change = Callable[[Optional[TicketLock]], Tuple[str, Optional[TicketLock], T]]


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig) -> None:
        # Rasa passes a custom lock store its endpoint config; the settings are RedisLockStore's.
        super().__init__(host=endpoint_config.url, **endpoint_config.kwargs)

    def _change(self, conversation_id: Text, change: Change) -> T:
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as transaction:
            while True:
                try:
                    transaction.watch(key)
                    stored = transaction.get(key)
                    lock = TicketLock.from_dict(json.loads(stored)) if stored else None
                    action, lock, result = change(lock)
                    transaction.multi()
                    if action == SAVE:
                        transaction.set(key, lock.dumps())
                    elif action == DELETE:
                        transaction.delete(key)
                    transaction.execute()
                    return result
                except redis.WatchError:
                    continue  # another server changed this lock between our read and write: again

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock: Optional[TicketLock]):
            lock = lock or self.create_lock(conversation_id)
            ticket = lock.issue_ticket(lock_lifetime)
            return SAVE, lock, ticket

        return self._change(conversation_id, issue)

    def _edit(self, conversation_id: Text, edit: Callable[[TicketLock], None], delete_if_idle: bool = False) -> None:
        """Applies `edit` to the stored lock, if there is one, and saves it (or deletes it once
        nobody waits, when asked)."""
        def change(lock: Optional[TicketLock]):
            if lock is None:
                return KEEP, None, None
            edit(lock)
            return (DELETE if delete_if_idle and not lock.is_someone_waiting() else SAVE), lock, None

        self._change(conversation_id, change)

    def update_lock(self, conversation_id: Text) -> None:
        self._edit(conversation_id, TicketLock.remove_expired_tickets)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        self._edit(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        # Rasa's: finish, then delete the lock if nobody waits, in three steps; a ticket queued on
        # another server between the check and the delete was deleted with it.
        self._edit(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number), delete_if_idle=True)
