"""AMQP 0-9-1 interop: python3-pika and amqp-tools (rabbitmq-c) against a spawned depot.

Run by ctest with DEPOT_BINARY set, under /usr/bin/python3 (Debian's python3-pika).
"""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import pika
import pika.exceptions

DEPOT = os.environ.get("DEPOT_BINARY", "build/release/depot")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Depot:
    def __init__(self, extra=()):
        self.dir = tempfile.mkdtemp(prefix="depot-amqp-")
        self.port = free_port()
        self.extra = list(extra)
        self.log = open(os.path.join(self.dir, "depot.log"), "w+")
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [DEPOT, "serve", "--data-dir", os.path.join(self.dir, "data"),
             "--jobs-listen", "off", "--kafka-listen", "off", "--http-listen", "off",
             "--amqp-listen", f"127.0.0.1:{self.port}", *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")})
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("depot did not listen: " + self.output())

    def restart(self, kill=False):
        if kill:
            self.process.kill()
            self.process.wait(timeout=10)
        else:
            self.process.terminate()
            code = self.process.wait(timeout=10)
            assert code == 0, f"depot exited {code}:\n{self.output()}"
        self.start()

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.process.terminate()
        code = self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return code

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


class PikaTest(DepotTestCase):
    def setUp(self):
        self.connection = pika.BlockingConnection(self.depot.params())
        self.channel = self.connection.channel()

    def tearDown(self):
        if self.connection.is_open:
            self.connection.close()

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
