"""Dead-letter publishing that can never stop the stream: bounded tries, then a durable fallback.

Why a dedicated aiokafka producer (not faust's): its maximum request size is the dead-letter topic's
(``dead_letter_max_message_bytes``; faust's producer allows 1 MB), and every await on it is bounded by
``asyncio.wait_for`` — a producer waiting for the metadata of a missing topic would otherwise block the
batch, and with it every partition, forever.

Flow per batch (``publish``): each envelope is sent and awaited (``acks=all``) with up to
``dead_letter_publish_attempts`` tries of ``dead_letter_publish_timeout_s`` each; what the topic did not
take is returned and the runtime writes it to ``scorer_dead_letters`` in the batch's own transaction,
before the source records are acked. After a failure the publisher stops trying on the batch path
(``error`` is set, batches go straight to the fallback) and ``republish`` — a periodic task, off the
stream — re-sends the fallback rows and clears ``error`` once the topic takes them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from common.logging import event
from scorer.processing import DeadLetterRecord

if TYPE_CHECKING:
    from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer.dead_letters")

#: Fallback rows re-published per claim (bounded memory: envelopes are up to 2 MiB each).
REPUBLISH_CHUNK = 64


class DeadLetterPublisher:
    def __init__(self, runtime: ScorerRuntime) -> None:
        self.rt = runtime
        s = runtime.settings
        self.topic = s.dead_letter_topic
        self.attempts = s.dead_letter_publish_attempts
        self.timeout = s.dead_letter_publish_timeout_s
        self.error: str | None = None  # why the topic does not take dead letters now (None: it does)
        self.pending = 0  # fallback rows not yet re-published (as of the last republish run)
        self._producer: Any = None
        r = runtime.metrics.registry
        self.total = Counter(
            "scorer_dead_letters",
            "Dead letters by outcome: published to the topic, or written to the PostgreSQL fallback",
            ["outcome"],
            registry=r,
        )
        self.pending_gauge = Gauge(
            "scorer_dead_letters_pending",
            "Dead letters in the PostgreSQL fallback waiting for the topic",
            registry=r,
        )
        for outcome in ("published", "fallback", "republished"):
            self.total.labels(outcome)

    # ------------------------------------------------------------------ producer
    async def _get_producer(self) -> Any:
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            s = self.rt.settings
            producer = AIOKafkaProducer(
                bootstrap_servers=s.kafka_bootstrap_servers,
                client_id=f"{s.worker_id}-dead-letters",
                acks="all",
                max_request_size=s.dead_letter_max_message_bytes,
                request_timeout_ms=int(self.timeout * 1000),
                linger_ms=5,
            )
            try:
                await asyncio.wait_for(producer.start(), self.timeout)
            except BaseException:
                await self._stop(producer)
                raise
            self._producer = producer
        return self._producer

    async def _stop(self, producer: Any) -> None:
        try:
            await asyncio.wait_for(producer.stop(), self.timeout)
        except Exception as exc:  # a stuck producer must not block shutdown
            event(log, "dead-letter producer did not stop cleanly", logging.WARNING, error=str(exc)[:300])

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._stop(producer)

    async def _send(self, items: Sequence[tuple[bytes | None, bytes]]) -> list[BaseException | None]:
        """Send every item and wait for its delivery; one result per item (None = delivered)."""
        producer = await self._get_producer()
        results: list[BaseException | None] = []
        futures: list[tuple[int, Any]] = []
        for i, (key, value) in enumerate(items):
            results.append(None)
            try:
                fut = await asyncio.wait_for(producer.send(self.topic, value=value, key=key), self.timeout)
            except Exception as exc:
                results[i] = exc
                continue
            futures.append((i, fut))
        if futures:
            try:
                done = await asyncio.wait_for(
                    asyncio.gather(*(f for _, f in futures), return_exceptions=True), self.timeout
                )
            except Exception as exc:
                done = [exc] * len(futures)
            for (i, _), res in zip(futures, done, strict=True):
                if isinstance(res, BaseException):
                    results[i] = res
        return results

    async def _send_bounded(
        self, items: Sequence[tuple[bytes | None, bytes]]
    ) -> tuple[list[int], BaseException | None]:
        """Up to ``attempts`` tries; returns the indexes not delivered and the last error."""
        remaining = list(range(len(items)))
        last: BaseException | None = None
        for attempt in range(self.attempts):
            try:
                results = await self._send([items[i] for i in remaining])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # producer start failed (Kafka unreachable)
                results = [exc] * len(remaining)
            failed = [i for i, res in zip(remaining, results, strict=True) if res is not None]
            errors = [res for res in results if res is not None]
            if errors:
                last = errors[-1]
            remaining = failed
            if not remaining:
                return [], None
            if attempt + 1 < self.attempts:
                await asyncio.sleep(0.2 * 2**attempt)
        return remaining, last

    @staticmethod
    def describe(exc: BaseException | None) -> str:
        if exc is None:
            return "unknown error"
        text = str(exc).strip() or repr(exc)
        return f"{type(exc).__name__}: {text}"[:500]

    # ------------------------------------------------------------------ batch path
    async def publish(self, letters: Sequence[DeadLetterRecord]) -> list[DeadLetterRecord]:
        """Publish a batch's dead letters; returns those for the PostgreSQL fallback (never raises)."""
        if not letters:
            return []
        if self.error is not None:  # the topic failed recently: do not stall this batch on it again
            self.total.labels("fallback").inc(len(letters))
            return list(letters)
        failed, exc = await self._send_bounded([(d.key, d.envelope) for d in letters])
        self.total.labels("published").inc(len(letters) - len(failed))
        if not failed:
            return []
        self.error = f"dead-letter topic {self.topic!r} refused {len(failed)} letter(s): {self.describe(exc)}"
        self.total.labels("fallback").inc(len(failed))
        event(
            log,
            "dead letters not published; kept in the PostgreSQL fallback (scorer_dead_letters)",
            logging.ERROR,
            topic=self.topic,
            letters=len(failed),
            codes=sorted({letters[i].code for i in failed}),
            error=self.describe(exc),
        )
        return [letters[i] for i in failed]

    # ------------------------------------------------------------------ periodic re-publish
    async def republish(self) -> None:
        """Re-send fallback rows (oldest first) until none is left or the topic fails again."""
        rt = self.rt
        sink = rt.aux_sink
        stale = max(60.0, 4 * self.attempts * self.timeout)
        sent = 0
        try:
            while True:
                rows = await rt._in(rt.aux, sink.claim_dead_letters, REPUBLISH_CHUNK, stale)
                if not rows:
                    break
                failed, exc = await self._send_bounded([(key, env) for _id, key, env in rows])
                bad = set(failed)
                ok_ids = [rows[i][0] for i in range(len(rows)) if i not in bad]
                await rt._in(rt.aux, sink.mark_dead_letters, ok_ids, [rows[i][0] for i in failed])
                sent += len(ok_ids)
                self.total.labels("republished").inc(len(ok_ids))
                if failed:
                    self.error = (
                        f"dead-letter topic {self.topic!r} still refuses letters: {self.describe(exc)}"
                    )
                    break
            if not rows and self.error is not None:
                await self._probe()
            if sent:
                await rt._in(rt.aux, sink.purge_dead_letters, rt.settings.dead_letter_retention_days)
            self.pending = await rt._in(rt.aux, sink.pending_dead_letters)
            self.pending_gauge.set(self.pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be down: the next run tries again
            event(log, "dead-letter re-publish failed", logging.WARNING, error=self.describe(exc))
            return
        if sent:
            event(log, "dead letters re-published from the fallback", letters=sent, pending=self.pending)

    async def _probe(self) -> None:
        """Nothing left to re-send: clear ``error`` once the topic is known to the broker again."""
        try:
            producer = await self._get_producer()
            parts = await asyncio.wait_for(producer.partitions_for(self.topic), self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = f"dead-letter topic {self.topic!r} unavailable: {self.describe(exc)}"
            return
        if parts:
            event(log, "dead-letter topic available again", topic=self.topic)
            self.error = None
