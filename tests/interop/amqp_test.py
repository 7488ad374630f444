"""AMQP 0-9-1 interop: python3-pika and amqp-tools (rabbitmq-c) against a spawned depot.

Run by ctest with DEPOT_BINARY set, under /usr/bin/python3 (Debian's python3-pika).
"""
import decimal
import os
import socket
import struct
import subprocess
import threading
import time
import unittest

import pika
import pika.exceptions

from spawned_depot import SpawnedDepot


class Depot(SpawnedDepot):
    def __init__(self, extra=(), listen_host="127.0.0.1"):
        super().__init__("amqp", extra, listen_host)

    def params(self, **kwargs):
        return pika.ConnectionParameters(host="127.0.0.1", port=self.port, **kwargs)


class DepotTestCase(unittest.TestCase):
    """One depot for the test class, which must exit cleanly at the end."""
    depot_args = ()

    @classmethod
    def setUpClass(cls):
        cls.depot = Depot(cls.depot_args)

    @classmethod
    def tearDownClass(cls):
        output = cls.depot.output()
        code = cls.depot.stop()
        assert code == 0, f"depot exited {code}:\n{output}"


class PikaTestCase(DepotTestCase):
    """A pika connection and channel for each test."""

    def setUp(self):
        self.connection = pika.BlockingConnection(self.depot.params())
        self.channel = self.connection.channel()

    def tearDown(self):
        if self.connection.is_open:
            self.connection.close()


class PikaTest(PikaTestCase):

    def closed_with(self, code, call):
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
            call()
        self.assertEqual(caught.exception.reply_code, code, caught.exception.reply_text)
        self.channel = self.connection.channel()  # a closed channel is gone; the connection stays
        return caught.exception.reply_text

    def test_every_exchange_type_declares_and_redeclares(self):
        for kind in ("direct", "fanout", "topic", "headers"):
            name = f"ex-{kind}"
            self.channel.exchange_declare(name, exchange_type=kind, durable=True)
            self.channel.exchange_declare(name, exchange_type=kind, durable=True)
            self.channel.exchange_declare(name, exchange_type=kind, passive=True)
        text = self.closed_with(406, lambda: self.channel.exchange_declare(
            "ex-topic", exchange_type="fanout", durable=True))
        self.assertIn("inequivalent arg 'type'", text)
        self.closed_with(404, lambda: self.channel.exchange_declare("ex-none", passive=True))
        self.closed_with(403, lambda: self.channel.exchange_declare("amq.mine", exchange_type="direct"))
        self.channel.exchange_declare("amq.topic", passive=True)
        text = self.closed_with(406, lambda: self.channel.exchange_declare(
            "ex-odd", exchange_type="x-no-such-type"))
        self.assertIn("unknown exchange type 'x-no-such-type'", text)

    def test_queues_bindings_and_exchange_to_exchange_bindings(self):
        declared = self.channel.queue_declare("", exclusive=True)
        name = declared.method.queue
        self.assertTrue(name.startswith("amq.gen-"), name)
        self.assertEqual(declared.method.message_count, 0)
        self.channel.exchange_declare("orders", exchange_type="topic")
        self.channel.exchange_declare("audit", exchange_type="fanout")
        self.channel.queue_bind(name, "orders", routing_key="order.*")
        self.channel.exchange_bind(destination="audit", source="orders", routing_key="#")
        self.channel.exchange_unbind(destination="audit", source="orders", routing_key="#")
        self.channel.queue_unbind(name, "orders", routing_key="order.*")
        self.closed_with(404, lambda: self.channel.queue_bind(name, "no-such-exchange"))
        self.closed_with(403, lambda: self.channel.queue_bind(name, ""))
        self.channel.queue_declare("work", durable=True, arguments={
            "x-message-ttl": 60000, "x-max-length": 100, "x-dead-letter-exchange": "dlx"})
        text = self.closed_with(406, lambda: self.channel.queue_declare(
            "work", durable=True, arguments={"x-message-ttl": 1000}))
        self.assertIn("x-message-ttl", text)
        self.closed_with(406, lambda: self.channel.queue_declare(
            "bad-ttl", arguments={"x-message-ttl": -5}))
        self.channel.queue_delete("work")
        self.closed_with(404, lambda: self.channel.queue_declare("work", passive=True))

    def test_an_exclusive_queue_is_locked_to_its_connection_and_goes_with_it(self):
        self.channel.queue_declare("private", exclusive=True)
        other = pika.BlockingConnection(self.depot.params())
        try:
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
                other.channel().queue_declare("private", passive=True)
            self.assertEqual(caught.exception.reply_code, 405)
        finally:
            other.close()
        self.connection.close()
        again = pika.BlockingConnection(self.depot.params())
        try:
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
                again.channel().queue_declare("private", passive=True)
            self.assertEqual(caught.exception.reply_code, 404)  # deleted with its connection
        finally:
            again.close()

    def test_many_channels_on_one_connection(self):
        channels = [self.connection.channel() for _ in range(20)]
        for i, ch in enumerate(channels):
            ch.queue_declare(f"q-{i}", auto_delete=False)
        for ch in channels:
            ch.close()

    def test_wrong_credentials_and_unknown_vhosts_are_refused(self):
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(self.depot.params(
                credentials=pika.PlainCredentials("guest", "wrong")))
        with self.assertRaises((pika.exceptions.ConnectionClosedByBroker,
                                pika.exceptions.ProbableAccessDeniedError)):
            pika.BlockingConnection(self.depot.params(virtual_host="nowhere"))


class UsersAndVirtualHostsTest(DepotTestCase):
    depot_args = ("--amqp-users", "app:s3cret,guest:guest", "--amqp-vhosts", "staging")

    def test_a_configured_user_opens_a_configured_vhost(self):
        credentials = pika.PlainCredentials("app", "s3cret")
        connection = pika.BlockingConnection(self.depot.params(
            credentials=credentials, virtual_host="staging"))
        channel = connection.channel()
        channel.queue_declare("in-staging")
        connection.close()
        # Virtual hosts are separate: the queue is not in "/".
        connection = pika.BlockingConnection(self.depot.params(credentials=credentials))
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
            connection.channel().queue_declare("in-staging", passive=True)
        self.assertEqual(caught.exception.reply_code, 404)
        connection.close()
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(self.depot.params(
                credentials=pika.PlainCredentials("app", "guess")))


class PermissionsTest(DepotTestCase):
    depot_args = ("--amqp-users", "reader:r,guest:guest", "--amqp-vhosts", "staging",
                  "--amqp-permissions", r"reader / ^reader\. ^$ ^(reader\..*|amq\.default)$")

    def test_permissions_limit_vhosts_and_resources(self):
        credentials = pika.PlainCredentials("reader", "r")
        # No entry for "staging": connection.open is refused with 530.
        with self.assertRaises(pika.exceptions.ProbableAccessDeniedError) as caught:
            pika.BlockingConnection(self.depot.params(credentials=credentials,
                                                      virtual_host="staging"))
        self.assertIn("(530) \"NOT_ALLOWED - access to vhost 'staging' refused for user 'reader'",
                      str(caught.exception))
        connection = pika.BlockingConnection(self.depot.params(credentials=credentials))
        ch = connection.channel()
        ch.queue_declare("reader.inbox")  # configure: ^reader\.
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare("other")
        self.assertEqual(caught.exception.reply_code, 403)
        self.assertEqual(caught.exception.reply_text,
                         "ACCESS_REFUSED - access to queue 'other' in vhost '/' refused for user "
                         "'reader'")
        # write: ^$ matches nothing: publishing to the default exchange is refused.
        ch = connection.channel()
        ch.basic_publish("", "reader.inbox", b"x")
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare("reader.inbox", passive=True)
        self.assertEqual(caught.exception.reply_code, 403)
        self.assertIn("exchange 'amq.default'", caught.exception.reply_text)
        # read: the queue may be consumed from; guest (no entries) may still do anything.
        guest = pika.BlockingConnection(self.depot.params())
        guest.channel().basic_publish("", "reader.inbox", b"for reader")
        guest.close()
        ch = connection.channel()
        self.assertEqual(ch.basic_get("reader.inbox", auto_ack=True)[2], b"for reader")
        connection.close()


class DurabilityTest(unittest.TestCase):
    """Durable exchanges, queues and bindings survive a restart and a SIGKILL; others do not."""

    def setUp(self):
        self.depot = Depot()

    def tearDown(self):
        self.depot.stop()

    def channel(self):
        self.connection = pika.BlockingConnection(self.depot.params())
        return self.connection.channel()

    def exists(self, declare):
        ch = self.channel()
        try:
            declare(ch)
            return True
        except pika.exceptions.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, 404, e.reply_text)
            return False
        finally:
            self.connection.close()

    def in_use(self, exchange):
        ch = self.channel()
        try:
            ch.exchange_delete(exchange, if_unused=True)
            return False
        except pika.exceptions.ChannelClosedByBroker as e:
            self.assertEqual(e.reply_code, 406, e.reply_text)
            return True
        finally:
            self.connection.close()

    def test_definitions_survive_a_restart_and_a_kill(self):
        ch = self.channel()
        ch.exchange_declare("d-ex", exchange_type="topic", durable=True)
        ch.exchange_declare("d-audit", exchange_type="fanout", durable=True)
        ch.exchange_declare("t-ex", exchange_type="direct")
        ch.queue_declare("d-q", durable=True, arguments={"x-max-length": 10})
        ch.queue_declare("t-q")
        ch.queue_bind("d-q", "d-ex", routing_key="a.#")
        ch.exchange_bind(destination="d-audit", source="d-ex", routing_key="#")
        ch.queue_bind("t-q", "d-audit")  # not durable: its queue is not
        self.connection.close()

        for kill in (False, True):
            self.depot.restart(kill=kill)
            self.assertIn("durable definition(s) and", self.depot.output())
            self.assertTrue(self.exists(lambda c: c.exchange_declare("d-ex", passive=True)))
            self.assertTrue(self.exists(lambda c: c.queue_declare("d-q", passive=True)))
            self.assertFalse(self.exists(lambda c: c.exchange_declare("t-ex", passive=True)))
            self.assertFalse(self.exists(lambda c: c.queue_declare("t-q", passive=True)))
            # The queue kept its arguments: an inequivalent redeclare is refused.
            ch = self.channel()
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
                ch.queue_declare("d-q", durable=True)
            self.assertEqual(caught.exception.reply_code, 406)
            self.connection.close()
            self.assertFalse(self.in_use("d-audit"))  # its only binding went with t-q
            ch = self.channel()
            ch.exchange_declare("d-audit", exchange_type="fanout", durable=True)
            ch.exchange_bind(destination="d-audit", source="d-ex", routing_key="#")
            self.connection.close()

        self.assertTrue(self.in_use("d-ex"))  # d-q's binding and the exchange binding
        ch = self.channel()
        ch.queue_delete("d-q")
        ch.exchange_delete("d-audit")
        self.connection.close()
        self.depot.restart()
        self.assertFalse(self.exists(lambda c: c.queue_declare("d-q", passive=True)))
        self.assertFalse(self.in_use("d-ex"))  # both bindings went with their ends


class WireTest(DepotTestCase):
    def test_another_protocol_header_gets_ours_and_a_close(self):
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            s.sendall(b"AMQP\x01\x01\x00\x0a")
            data = b""
            while True:
                chunk = s.recv(100)
                if not chunk:
                    break
                data += chunk
            self.assertEqual(data, b"AMQP\x00\x00\x09\x01")

    def test_a_bad_frame_end_closes_the_connection_with_frame_error(self):
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            start = s.recv(4096)
            self.assertEqual(start[0], 1)                                   # a method frame
            self.assertEqual(struct.unpack(">HH", start[7:11]), (10, 10))  # connection.start
            self.assertIn(b"PLAIN AMQPLAIN", start)
            s.sendall(b"\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x0b\xff")  # frame-end 0xff
            reply = s.recv(4096)
            self.assertEqual(struct.unpack(">HH", reply[7:11]), (10, 50))  # connection.close
            self.assertEqual(struct.unpack(">H", reply[11:13])[0], 501)
            self.assertIn(b"FRAME_ERROR", reply)

    def publish_frames(self, queue, body, declared_size=None):
        method = frame(1, 1, struct.pack(">HHH", 60, 40, 0) + shortstr(b"") + shortstr(queue)
                       + b"\0")
        header = frame(2, 1, struct.pack(">HHQH", 60, 0, declared_size or len(body), 0))
        return method + header + frame(3, 1, body)

    def test_a_burst_of_pipelined_publishes_arrives_whole_and_in_order(self):
        # Thousands of frames in one write: depot reads them in growing pieces, moves unfinished
        # frames to the front of its buffer, and handles a bounded number per turn of its loop.
        # Every message must come through once, whole, in order.
        connection = pika.BlockingConnection(self.depot.params())
        ch = connection.channel()
        ch.queue_declare("burst-q")
        bodies = [(b"%05d:" % i) + bytes([65 + i % 26]) * ((i * 7919) % 300 + (5000 if i % 97 == 0
                                                                                    else 0))
                  for i in range(2000)]
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            handshake(s, heartbeat=0)
            s.sendall(frame(1, 1, struct.pack(">HH", 20, 10) + b"\0"))  # channel.open
            read_frame(s)
            s.sendall(b"".join(self.publish_frames(b"burst-q", body) for body in bodies))
            s.sendall(frame(1, 1, struct.pack(">HHH", 20, 40, 200) + shortstr(b"bye")
                            + struct.pack(">HH", 0, 0)))  # channel.close
            kind, channel, payload = read_frame(s)
            self.assertEqual(struct.unpack(">HH", payload[:4]), (20, 41), payload)  # close-ok
        got = [body for _, body in get_all(ch, "burst-q")]
        self.assertEqual(len(got), len(bodies))
        self.assertTrue(got == bodies, "the bodies differ from what was published, or their order")
        connection.close()

    def test_a_client_that_vanishes_mid_message_leaves_nothing_half_queued(self):
        connection = pika.BlockingConnection(self.depot.params())
        ch = connection.channel()
        ch.queue_declare("wire-q")
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            handshake(s, heartbeat=0)
            s.sendall(frame(1, 1, struct.pack(">HH", 20, 10) + b"\0"))  # channel.open
            read_frame(s)
            s.sendall(self.publish_frames(b"wire-q", b"whole"))
            # The next message: its header says 100 bytes, 10 come, then the socket closes
            # mid-frame.
            partial = self.publish_frames(b"wire-q", b"0123456789", declared_size=100)
            s.sendall(partial[:-4])
        deadline = time.time() + 5
        while ch.queue_declare("wire-q", passive=True).method.message_count != 1:
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        time.sleep(0.2)
        self.assertEqual(ch.queue_declare("wire-q", passive=True).method.message_count, 1)
        self.assertEqual(ch.basic_get("wire-q", auto_ack=True)[2], b"whole")
        connection.close()

    def test_a_body_longer_than_its_header_says_is_a_frame_error(self):
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            handshake(s, heartbeat=0)
            s.sendall(frame(1, 1, struct.pack(">HH", 20, 10) + b"\0"))
            read_frame(s)
            s.sendall(self.publish_frames(b"wire-q2", b"too long", declared_size=3))
            kind, channel, payload = read_frame(s)
            self.assertEqual(struct.unpack(">HHH", payload[:6]), (10, 50, 501))
            self.assertIn(b"the header said 3", payload)


def get_all(channel, queue):
    """Every message left on `queue`, taken with basic.get and auto-ack: (properties, body)."""
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return messages
        messages.append((properties, body))


def frame(kind, channel, payload):
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


def shortstr(text):
    return bytes([len(text)]) + text


def read_frame(sock):
    header = b""
    while len(header) < 7:
        chunk = sock.recv(7 - len(header))
        if not chunk:
            return None
        header += chunk
    kind, channel, size = struct.unpack(">BHI", header)
    body = b""
    while len(body) < size + 1:
        chunk = sock.recv(size + 1 - len(body))
        if not chunk:
            return None
        body += chunk
    return kind, channel, body[:-1]


def handshake(sock, heartbeat):
    """Opens a connection by hand with the given heartbeat (seconds)."""
    sock.sendall(b"AMQP\x00\x00\x09\x01")
    read_frame(sock)  # connection.start
    start_ok = (struct.pack(">HH", 10, 11) + struct.pack(">I", 0) + shortstr(b"PLAIN")
                + struct.pack(">I", 12) + b"\0guest\0guest" + shortstr(b"en_US"))
    sock.sendall(frame(1, 0, start_ok))
    read_frame(sock)  # connection.tune
    sock.sendall(frame(1, 0, struct.pack(">HHHIH", 10, 31, 0, 131072, heartbeat)))
    sock.sendall(frame(1, 0, struct.pack(">HH", 10, 40) + shortstr(b"/") + shortstr(b"") + b"\0"))
    kind, _, payload = read_frame(sock)
    assert struct.unpack(">HH", payload[:4]) == (10, 41), payload  # connection.open-ok


class HeartbeatAndShutdownTest(unittest.TestCase):
    def setUp(self):
        self.depot = Depot()

    def tearDown(self):
        self.depot.stop()  # also when SIGTERM already stopped it

    def test_heartbeats_flow_and_a_silent_client_is_dropped(self):
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=10) as s:
            handshake(s, heartbeat=1)
            started = time.time()
            beats = 0
            # depot sends a heartbeat every half interval while it has nothing else to send, and
            # closes the connection after two intervals without a word from the client.
            while True:
                got = read_frame(s)
                if got is None:
                    break
                self.assertEqual(got[0], 8)  # heartbeat frames only
                beats += 1
            self.assertGreaterEqual(beats, 2)
            self.assertLess(time.time() - started, 8)

    def test_sigterm_closes_connections_with_connection_forced(self):
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=10) as s:
            handshake(s, heartbeat=0)
            self.depot.process.terminate()
            kind, channel, payload = read_frame(s)
            self.assertEqual((kind, channel), (1, 0))
            self.assertEqual(struct.unpack(">HHH", payload[:6]), (10, 50, 320))
            self.assertIn(b"shutdown", payload)
            s.sendall(frame(1, 0, struct.pack(">HH", 10, 51)))  # close-ok
            self.assertEqual(self.depot.process.wait(timeout=10), 0)


class MessagingTest(PikaTestCase):
    """Messages through pika: routing, acks, requeues, confirms, transactions, TTL, DLX."""

    def drain(self, queue, channel=None):
        return [body for _, body in get_all(channel or self.channel, queue)]

    def consume(self, queue, count, channel=None, auto_ack=False):
        """The next `count` deliveries (method, properties, body), waiting at most 5 s."""
        ch = channel or self.channel
        got = []
        for delivery in ch.consume(queue, auto_ack=auto_ack, inactivity_timeout=5):
            if delivery[0] is None:
                break
            got.append(delivery)
            if len(got) == count:
                break
        return got

    def test_each_exchange_type_routes_published_messages(self):
        ch = self.channel
        for kind in ("direct", "fanout", "topic", "headers"):
            ch.exchange_declare(f"m-{kind}", exchange_type=kind)
        for q in ("m-a", "m-b"):
            ch.queue_declare(q)
            ch.queue_purge(q)
        ch.queue_bind("m-a", "m-direct", routing_key="red")
        ch.queue_bind("m-a", "m-fanout")
        ch.queue_bind("m-b", "m-fanout")
        ch.queue_bind("m-a", "m-topic", routing_key="stock.*.nyse")
        ch.queue_bind("m-b", "m-topic", routing_key="stock.#")
        ch.queue_bind("m-a", "m-headers", arguments={"x-match": "all", "kind": "trade", "size": 5})
        ch.basic_publish("m-direct", "red", b"direct")
        ch.basic_publish("m-direct", "blue", b"nowhere")
        ch.basic_publish("m-fanout", "ignored", b"fanout")
        ch.basic_publish("m-topic", "stock.ibm.nyse", b"topic-both")
        ch.basic_publish("m-topic", "stock.ibm.lse.x", b"topic-b")
        ch.basic_publish("m-headers", "", b"headers",
                         pika.BasicProperties(headers={"kind": "trade", "size": 5}))
        ch.basic_publish("m-headers", "", b"headers-miss",
                         pika.BasicProperties(headers={"kind": "trade"}))
        ch.basic_publish("", "m-b", b"default")
        self.assertEqual(self.drain("m-a"), [b"direct", b"fanout", b"topic-both", b"headers"])
        self.assertEqual(self.drain("m-b"), [b"fanout", b"topic-both", b"topic-b", b"default"])

    def test_properties_headers_and_large_bodies_round_trip(self):
        self.channel.queue_declare("m-props")
        props = pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8",
            headers={"s": "text", "i": 42, "neg": -7, "d": decimal.Decimal("1.50"), "b": True, "l": [1, "two"],
                     "t": {"nested": "yes"}},
            delivery_mode=2, priority=3, correlation_id="corr", reply_to="replies",
            expiration="60000", message_id="mid-1", timestamp=1700000000, type="order",
            user_id="guest", app_id="tests", cluster_id="c1")
        big = os.urandom(1_000_000)  # many body frames at the default frame_max
        self.channel.basic_publish("", "m-props", b"{}", props)
        self.channel.basic_publish("", "m-props", big)
        self.channel.basic_publish("", "m-props", b"")
        method, got, body = self.channel.basic_get("m-props", auto_ack=True)
        self.assertEqual(body, b"{}")
        self.assertEqual(method.message_count, 2)
        for field in ("content_type", "content_encoding", "headers", "delivery_mode", "priority",
                      "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                      "type", "user_id", "app_id", "cluster_id"):
            self.assertEqual(getattr(got, field), getattr(props, field), field)
        method, _, body = self.channel.basic_get("m-props", auto_ack=True)
        self.assertEqual(body, big)
        method, _, body = self.channel.basic_get("m-props", auto_ack=True)
        self.assertEqual(body, b"")
        self.assertEqual(self.channel.basic_get("m-props")[0], None)

    def test_a_user_id_other_than_the_login_is_refused(self):
        self.channel.queue_declare("m-uid")
        self.channel.basic_publish("", "m-uid", b"x", pika.BasicProperties(user_id="mallory"))
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
            self.channel.queue_declare("m-uid", passive=True)
        self.assertEqual(caught.exception.reply_code, 406)
        self.assertIn("user_id property set to 'mallory'", caught.exception.reply_text)

    def test_consumers_share_a_queue_and_unacked_messages_return_in_order(self):
        ch = self.channel
        ch.queue_declare("m-work")
        ch.queue_purge("m-work")
        for i in range(10):
            ch.basic_publish("", "m-work", f"job-{i}".encode())
        # A consumer with prefetch 4 takes four and dies without acking.
        other = pika.BlockingConnection(self.depot.params())
        och = other.channel()
        och.basic_qos(prefetch_count=4)
        taken = self.consume("m-work", 4, channel=och)
        self.assertEqual([b for _, _, b in taken], [f"job-{i}".encode() for i in range(4)])
        self.assertTrue(all(not m.redelivered for m, _, _ in taken))
        other.close()
        # They are back, first, in order, marked redelivered.
        got = self.consume("m-work", 10)
        self.assertEqual([b for _, _, b in got], [f"job-{i}".encode() for i in range(10)])
        self.assertEqual([m.redelivered for m, _, _ in got], [True] * 4 + [False] * 6)
        ch.basic_ack(got[-1][0].delivery_tag, multiple=True)
        ch.cancel()
        self.assertEqual(ch.queue_declare("m-work", passive=True).method.message_count, 0)

    def test_prefetch_limits_unacked_deliveries_and_acks_release_more(self):
        ch = self.channel
        ch.queue_declare("m-prefetch")
        for i in range(5):
            ch.basic_publish("", "m-prefetch", str(i).encode())
        ch.basic_qos(prefetch_count=2)
        got = []
        ch.basic_consume("m-prefetch", lambda c, m, p, b: got.append((m, b)))
        self.connection.sleep(0.5)
        self.assertEqual([b for _, b in got], [b"0", b"1"])
        ch.basic_ack(got[0][0].delivery_tag)
        self.connection.sleep(0.5)
        self.assertEqual([b for _, b in got], [b"0", b"1", b"2"])
        ch.basic_ack(got[-1][0].delivery_tag, multiple=True)
        self.connection.sleep(0.5)
        self.assertEqual([b for _, b in got], [b"0", b"1", b"2", b"3", b"4"])

    def test_nack_reject_and_recover(self):
        ch = self.channel
        ch.queue_declare("m-nack")
        for body in (b"a", b"b", b"c"):
            ch.basic_publish("", "m-nack", body)
        a = ch.basic_get("m-nack")
        b = ch.basic_get("m-nack")
        c = ch.basic_get("m-nack")
        ch.basic_nack(b[0].delivery_tag, multiple=True, requeue=True)  # a and b back
        ch.basic_reject(c[0].delivery_tag, requeue=False)  # dropped: no DLX
        again = ch.basic_get("m-nack")
        self.assertEqual(again[2], b"a")
        self.assertTrue(again[0].redelivered)
        ch.basic_recover(requeue=True)
        self.assertEqual(self.drain("m-nack"), [b"a", b"b"])
        self.assertEqual(a[2] + b[2] + c[2], b"abc")

    def test_an_unknown_delivery_tag_closes_the_channel_with_406(self):
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
            self.channel.basic_ack(99)
            self.channel.queue_declare("m-after")  # a round trip to see the close
        self.assertEqual(caught.exception.reply_code, 406)
        self.assertIn("unknown delivery tag 99", caught.exception.reply_text)

    def test_mandatory_unroutable_messages_are_returned(self):
        ch = self.channel
        ch.confirm_delivery()
        with self.assertRaises(pika.exceptions.UnroutableError) as caught:
            ch.basic_publish("", "no-such-queue", b"lost", mandatory=True)
        returned = caught.exception.messages[0]
        self.assertEqual(returned.method.reply_code, 312)
        self.assertEqual(returned.method.reply_text, "NO_ROUTE")
        self.assertEqual(returned.body, b"lost")
        # Without mandatory it is confirmed and dropped.
        ch.basic_publish("", "no-such-queue", b"dropped")

    def test_publisher_confirms_ack_stored_messages_and_nack_refused_ones(self):
        ch = self.channel
        ch.confirm_delivery()
        ch.queue_declare("m-confirm", durable=True)
        ch.queue_declare("m-full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        for i in range(50):
            ch.basic_publish("", "m-confirm", str(i).encode(),
                             pika.BasicProperties(delivery_mode=2))
        ch.basic_publish("", "m-full", b"fits")
        with self.assertRaises(pika.exceptions.NackError):
            ch.basic_publish("", "m-full", b"refused")
        self.assertEqual(len(self.drain("m-confirm")), 50)
        self.assertEqual(self.drain("m-full"), [b"fits"])

    def test_transactions_commit_and_roll_back(self):
        ch = self.channel
        ch.queue_declare("m-tx")
        ch.queue_purge("m-tx")
        ch.tx_select()
        ch.basic_publish("", "m-tx", b"rolled-back")
        ch.tx_rollback()
        ch.basic_publish("", "m-tx", b"committed", pika.BasicProperties(delivery_mode=2))
        peek = pika.BlockingConnection(self.depot.params())
        self.assertEqual(peek.channel().queue_declare("m-tx", passive=True).method.message_count, 0)
        ch.tx_commit()
        self.assertEqual(peek.channel().queue_declare("m-tx", passive=True).method.message_count, 1)
        # Acks in a transaction apply at commit.
        method, _, body = ch.basic_get("m-tx")
        self.assertEqual(body, b"committed")
        ch.basic_ack(method.delivery_tag)
        ch.tx_rollback()  # the ack is discarded: the message stays unacked
        ch.basic_ack(method.delivery_tag)
        ch.tx_commit()
        self.assertEqual(peek.channel().queue_declare("m-tx", passive=True).method.message_count, 0)
        peek.close()

    def test_ttl_and_dead_lettering_with_x_death(self):
        ch = self.channel
        ch.exchange_declare("m-dlx", exchange_type="direct")
        ch.queue_declare("m-dead")
        ch.queue_bind("m-dead", "m-dlx", routing_key="dead")
        ch.queue_declare("m-ttl", arguments={"x-message-ttl": 200, "x-dead-letter-exchange": "m-dlx",
                                             "x-dead-letter-routing-key": "dead"})
        ch.basic_publish("", "m-ttl", b"expires")
        ch.basic_publish("", "m-ttl", b"expires-sooner", pika.BasicProperties(expiration="50"))
        time.sleep(0.8)
        self.assertEqual(ch.queue_declare("m-ttl", passive=True).method.message_count, 0)
        dead = []
        for _ in range(2):
            method, props, body = ch.basic_get("m-dead", auto_ack=True)
            self.assertIsNotNone(method)
            dead.append((props, body))
        self.assertEqual(sorted(b for _, b in dead), [b"expires", b"expires-sooner"])
        for props, body in dead:
            death = props.headers["x-death"][0]
            self.assertEqual(death["reason"], "expired")
            self.assertEqual(death["queue"], "m-ttl")
            self.assertEqual(death["count"], 1)
            self.assertEqual(death["routing-keys"], ["m-ttl"])
            self.assertEqual(props.headers["x-first-death-reason"], "expired")
        # A rejected message dead-letters too.
        ch.queue_declare("m-rej", arguments={"x-dead-letter-exchange": "m-dlx",
                                             "x-dead-letter-routing-key": "dead"})
        ch.basic_publish("", "m-rej", b"bad")
        method, _, _ = ch.basic_get("m-rej")
        ch.basic_reject(method.delivery_tag, requeue=False)
        method, props, body = ch.basic_get("m-dead", auto_ack=True)
        self.assertEqual(body, b"bad")
        self.assertEqual(props.headers["x-death"][0]["reason"], "rejected")

    def test_an_unused_queue_expires(self):
        ch = self.channel
        ch.queue_declare("m-expiring", arguments={"x-expires": 300})
        ch.queue_declare("m-kept", arguments={"x-expires": 300})
        ch.basic_consume("m-kept", lambda *a: None)  # in use while consumed
        time.sleep(1.0)
        ch.queue_declare("m-kept", passive=True, arguments={"x-expires": 300})
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare("m-expiring", passive=True)
        self.assertEqual(caught.exception.reply_code, 404)

    def test_priorities_and_single_active_consumer(self):
        ch = self.channel
        ch.queue_declare("m-prio", arguments={"x-max-priority": 10})
        for body, priority in ((b"low", 1), (b"high", 9), (b"mid", 5), (b"none", None)):
            ch.basic_publish("", "m-prio", body, pika.BasicProperties(priority=priority))
        self.assertEqual(self.drain("m-prio"), [b"high", b"mid", b"low", b"none"])

        ch.queue_declare("m-sac", arguments={"x-single-active-consumer": True})
        first, second = [], []
        tag = ch.basic_consume("m-sac", lambda c, m, p, b: first.append(b), auto_ack=True)
        ch.basic_consume("m-sac", lambda c, m, p, b: second.append(b), auto_ack=True)
        for i in range(4):
            ch.basic_publish("", "m-sac", str(i).encode())
        self.connection.sleep(0.5)
        self.assertEqual((len(first), len(second)), (4, 0))
        ch.basic_cancel(tag)
        ch.basic_publish("", "m-sac", b"next")
        self.connection.sleep(0.5)
        self.assertEqual(second, [b"next"])

    def test_deleting_a_queue_cancels_its_consumers(self):
        ch = self.channel
        ch.queue_declare("m-doomed")
        cancelled = []
        ch.basic_consume("m-doomed", lambda *a: None)
        ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
        other = pika.BlockingConnection(self.depot.params())
        other.channel().queue_delete("m-doomed")
        other.close()
        self.connection.sleep(0.5)
        self.assertEqual(len(cancelled), 1)
        self.assertTrue(cancelled[0].startswith("ctag"))  # pika names its own consumers


class DeliveryCoalescingTest(PikaTestCase):
    """--amqp-delivery-coalescing: deliveries to a connection that got some less than the interval
    ago wait for the rest of it and go out together; the first after a pause is not held, and a
    settled publisher confirm ends a hold. The interval is long so that held and not held differ
    by far more than scheduling noise."""
    depot_args = ("--amqp-delivery-coalescing", "1s")

    def setUp(self):
        super().setUp()
        self.arrivals = []
        self.channel.queue_declare("c-stream")
        self.channel.basic_consume(
            "c-stream", lambda c, m, p, b: self.arrivals.append((b, time.monotonic())),
            auto_ack=True)
        self.publisher = pika.BlockingConnection(self.depot.params())
        self.confirmed = self.publisher.channel()
        self.confirmed.confirm_delivery()

    def tearDown(self):
        self.publisher.close()
        super().tearDown()

    def publish(self, channel, body, queue="c-stream"):
        """Publishes with confirms; returns when it was sent and how long the confirm took."""
        sent = time.monotonic()
        channel.basic_publish("", queue, body)
        return sent, time.monotonic() - sent

    def wait_for(self, count):
        deadline = time.monotonic() + 10
        while len(self.arrivals) < count and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.01)
        self.assertEqual(len(self.arrivals), count)

    def test_a_stream_is_delivered_in_one_write_per_interval(self):
        sent, confirm_took = self.publish(self.confirmed, b"first")
        self.wait_for(1)
        self.assertLess(self.arrivals[0][1] - sent, 0.5)  # after a pause: at once
        self.assertLess(confirm_took, 0.5)
        for i in range(5):
            _, confirm_took = self.publish(self.confirmed, f"held-{i}".encode())
            self.assertLess(confirm_took, 0.5)  # the publisher's confirms are never held
        self.wait_for(6)
        held = [at for _, at in self.arrivals[1:]]
        self.assertGreaterEqual(held[0] - self.arrivals[0][1], 0.8)
        self.assertLess(max(held) - min(held), 0.2)  # together
        self.assertEqual([body for body, _ in self.arrivals],
                         [b"first"] + [f"held-{i}".encode() for i in range(5)])
        time.sleep(1.2)
        sent, _ = self.publish(self.confirmed, b"after a pause")
        self.wait_for(7)
        self.assertLess(self.arrivals[6][1] - sent, 0.5)

    def test_a_confirm_for_the_consuming_connection_ends_its_hold(self):
        self.publish(self.confirmed, b"first")
        self.wait_for(1)
        self.publish(self.confirmed, b"held")  # held on the consuming connection
        # The consuming connection publishes with confirms itself: the confirm does not wait for
        # the interval, and the held delivery goes out with it.
        own = self.connection.channel()
        own.confirm_delivery()
        own.queue_declare("c-other")
        _, confirm_took = self.publish(own, b"mine", queue="c-other")
        self.assertLess(confirm_took, 0.5)
        self.wait_for(2)
        self.assertLess(self.arrivals[1][1] - self.arrivals[0][1], 0.8)

    def test_a_reply_does_not_overtake_held_deliveries(self):
        self.channel.queue_declare("c-raw")
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            handshake(s, heartbeat=0)
            s.sendall(frame(1, 1, struct.pack(">HH", 20, 10) + b"\0"))  # channel.open
            read_frame(s)
            s.sendall(frame(1, 1, struct.pack(">HHH", 60, 20, 0) + shortstr(b"c-raw")
                            + shortstr(b"raw") + b"\x02" + struct.pack(">I", 0)))  # no-ack
            self.assertEqual(struct.unpack(">HH", read_frame(s)[2][:4]), (60, 21))
            self.publish(self.confirmed, b"first", queue="c-raw")
            self.assertEqual([read_frame(s)[0] for _ in range(3)], [1, 2, 3])
            for i in range(3):
                self.publish(self.confirmed, f"held-{i}".encode(), queue="c-raw")
            # basic.cancel while those are held: as RabbitMQ does, the deliveries queued before
            # it come first, then cancel-ok, so none arrives for a cancelled consumer.
            s.sendall(frame(1, 1, struct.pack(">HH", 60, 30) + shortstr(b"raw") + b"\0"))
            frames = [read_frame(s) for _ in range(10)]
        methods = [struct.unpack(">HH", payload[:4]) for kind, _, payload in frames if kind == 1]
        self.assertEqual(methods, [(60, 60)] * 3 + [(60, 31)])
        self.assertEqual([payload for kind, _, payload in frames if kind == 3],
                         [b"held-0", b"held-1", b"held-2"])


class DualStackTest(unittest.TestCase):
    def test_guest_logs_in_over_ipv4_to_a_dual_stack_listener(self):
        # On [::], a client of 127.0.0.1 arrives as ::ffff:127.0.0.1: still loopback, so guest
        # may log in (as with RabbitMQ, which listens on [::] by default).
        depot = Depot(listen_host="::")
        try:
            connection = pika.BlockingConnection(depot.params())
            connection.channel().queue_declare("dual-stack")
            connection.close()
        finally:
            output = depot.output()
            self.assertEqual(depot.stop(), 0, output)


class MessageDurabilityTest(unittest.TestCase):
    """Persistent messages in durable queues survive a restart and a SIGKILL; others do not."""

    def setUp(self):
        self.depot = Depot()

    def tearDown(self):
        self.depot.stop()

    def test_persistent_messages_survive_restart_and_kill(self):
        for kill in (False, True):
            with self.subTest(kill=kill):
                connection = pika.BlockingConnection(self.depot.params())
                ch = connection.channel()
                ch.confirm_delivery()
                ch.queue_declare("p-durable", durable=True)
                ch.queue_declare("p-transient")
                ch.queue_purge("p-durable")
                for i in range(200):
                    ch.basic_publish("", "p-durable", f"persistent-{i}".encode(),
                                     pika.BasicProperties(delivery_mode=2, headers={"i": i}))
                ch.basic_publish("", "p-durable", b"transient-message")
                ch.basic_publish("", "p-transient", b"gone", pika.BasicProperties(delivery_mode=2))
                # Half acked before the restart: those must not come back.
                for _ in range(100):
                    method, _, _ = ch.basic_get("p-durable")
                    ch.basic_ack(method.delivery_tag)
                # One delivered and not acked: it comes back.
                self.assertEqual(ch.basic_get("p-durable")[2], b"persistent-100")
                # The basic.get-ok above came after the acks: they are on disk by now.
                self.depot.restart(kill=kill)
                connection = pika.BlockingConnection(self.depot.params())
                ch = connection.channel()
                left = get_all(ch, "p-durable")
                for props, body in left:
                    self.assertEqual(props.headers["i"], int(body.split(b"-")[1]))
                self.assertEqual([body for _, body in left],
                                 [f"persistent-{i}".encode() for i in range(100, 200)])
                self.assertEqual(ch.queue_declare("p-transient").method.message_count, 0)
                connection.close()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class ResourceAlarmTest(unittest.TestCase):
    """Past --amqp-memory-limit, publishers are blocked (connection.blocked) until it clears."""

    def test_a_memory_alarm_blocks_publishers_until_memory_is_freed(self):
        depot = Depot()
        try:
            baseline = rss_bytes(depot.process.pid)
            depot.extra = ["--amqp-memory-limit", str(baseline + (40 << 20))]
            depot.restart()
            events = []
            alarmed = threading.Event()

            def publish():
                # 60 MiB held in RAM passes the limit. depot stops reading this connection at its
                # next publish once the alarm is raised (part-way, or at the small message).
                publisher = pika.BlockingConnection(depot.params())
                publisher.add_on_connection_blocked_callback(
                    lambda conn, frame: events.append(("blocked", frame.method.reason)))
                publisher.add_on_connection_unblocked_callback(
                    lambda conn, frame: events.append(("unblocked", None)))
                ch = publisher.channel()
                chunk = os.urandom(1 << 20)
                for _ in range(60):
                    ch.basic_publish("", "alarm-big", chunk)
                alarmed.wait(timeout=20)
                ch.basic_publish("", "alarm-small", b"after the alarm")
                until = time.time() + 20
                while len(events) < 2 and time.time() < until:
                    publisher.sleep(0.1)
                publisher.close()

            observer = pika.BlockingConnection(depot.params())
            och = observer.channel()
            och.queue_declare("alarm-big")
            och.queue_declare("alarm-small")
            thread = threading.Thread(target=publish)
            thread.start()
            deadline = time.time() + 20
            while "memory alarm:" not in depot.output():
                self.assertLess(time.time(), deadline, depot.output())
                time.sleep(0.05)
            alarmed.set()
            while "blocked while the memory alarm" not in depot.output():
                self.assertLess(time.time(), deadline, depot.output())
                time.sleep(0.05)
            # A connection that does not publish is not blocked; consuming frees the memory.
            self.assertEqual(och.queue_declare("alarm-small", passive=True).method.message_count, 0)
            drained = 0
            while thread.is_alive() and time.time() < deadline:
                if och.basic_get("alarm-big", auto_ack=True)[0] is not None:
                    drained += 1
                else:
                    observer.sleep(0.05)
            thread.join(timeout=10)
            self.assertFalse(thread.is_alive())
            while och.basic_get("alarm-big", auto_ack=True)[0] is not None:
                drained += 1
            self.assertEqual(drained, 60)
            self.assertEqual(och.basic_get("alarm-small", auto_ack=True)[2], b"after the alarm")
            self.assertEqual(events, [("blocked", "low on memory"), ("unblocked", None)])
            observer.close()
            self.assertIn("the memory alarm has cleared", depot.output())
        finally:
            self.assertEqual(depot.stop(), 0)


class AmqpToolsTest(DepotTestCase):

    def test_amqp_declare_queue(self):
        server = f"127.0.0.1:{self.depot.port}"
        out = subprocess.run(["amqp-declare-queue", "--server", server, "--queue", "tools-q",
                              "--durable"], capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "tools-q")
        # Declared again with other flags: refused with the broker's reason.
        out = subprocess.run(["amqp-declare-queue", "--server", server, "--queue", "tools-q"],
                             capture_output=True, text=True, timeout=20)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("PRECONDITION_FAILED", out.stderr)

    def test_amqp_publish_and_consume(self):
        server = f"127.0.0.1:{self.depot.port}"
        run = lambda *args: subprocess.run(list(args), capture_output=True, text=True, timeout=20)
        out = run("amqp-declare-queue", "--server", server, "--queue", "tools-msgs")
        self.assertEqual(out.returncode, 0, out.stderr)
        for i in range(3):
            out = run("amqp-publish", "--server", server, "--routing-key", "tools-msgs",
                      "--persistent", "--content-type", "text/plain", "--body", f"hello-{i}")
            self.assertEqual(out.returncode, 0, out.stderr)
        out = run("amqp-get", "--server", server, "--queue", "tools-msgs")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "hello-0")
        # amqp-consume runs a command per message; -c 2 stops after two.
        out = run("amqp-consume", "--server", server, "--queue", "tools-msgs", "-c", "2", "cat")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "hello-1hello-2")


if __name__ == "__main__":
    unittest.main(verbosity=2)
