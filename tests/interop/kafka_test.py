"""Kafka interop: kcat (librdkafka) and raw requests against a spawned depot's Kafka face.

Run by ctest with DEPOT_BINARY set, under /usr/bin/python3. Served so far: ApiVersions and
Metadata (topics created on first use); other APIs close the connection, as Kafka does.
"""
import json
import socket
import struct
import subprocess
import unittest

from spawned_depot import SpawnedDepot


class Depot(SpawnedDepot):
    def __init__(self):
        super().__init__("kafka")

    def kcat(self, *args):
        out = subprocess.run(["kcat", "-b", f"127.0.0.1:{self.port}", *args],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError(f"kcat {args} failed: {out.stderr}")
        return out.stdout


def request(api_key, version, correlation_id, body=b"", flexible=False):
    header = struct.pack(">hhih", api_key, version, correlation_id, 4) + b"test"
    if flexible:
        header += b"\x00"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_response(sock):
    size = b""
    while len(size) < 4:
        chunk = sock.recv(4 - len(size))
        if not chunk:
            return None
        size += chunk
    (n,) = struct.unpack(">i", size)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class KafkaTest(unittest.TestCase):
    def setUp(self):
        self.depot = Depot()

    def tearDown(self):
        output = self.depot.output()
        self.assertEqual(self.depot.stop(), 0, output)

    def test_kcat_lists_the_broker_and_topics_created_on_first_use(self):
        listing = json.loads(self.depot.kcat("-L", "-J"))
        self.assertEqual(listing["brokers"], [{"id": 1, "name": f"127.0.0.1:{self.depot.port}"}])
        self.assertEqual(listing["controllerid"], 1)
        self.assertEqual(listing["topics"], [])
        # Asking for a topic creates it (auto.create.topics.enable), with one partition led here.
        asked = json.loads(self.depot.kcat("-L", "-J", "-t", "orders"))
        self.assertEqual(asked["topics"], [{"topic": "orders", "partitions": [
            {"partition": 0, "leader": 1, "replicas": [{"id": 1}], "isrs": [{"id": 1}]}]}])
        # Topics are directories of logs: they are there after a restart.
        self.depot.restart()
        listing = json.loads(self.depot.kcat("-L", "-J"))
        self.assertEqual([t["topic"] for t in listing["topics"]], ["orders"])

    def test_an_illegal_topic_name_is_refused_with_invalid_topic(self):
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            # Metadata v1 for the topic "bad name!" (a space and '!' are not allowed).
            name = b"bad name!"
            s.sendall(request(3, 1, 9, struct.pack(">ih", 1, len(name)) + name))
            data = read_response(s)
        correlation, = struct.unpack(">i", data[:4])
        self.assertEqual(correlation, 9)
        self.assertIn(b"bad name!", data)
        at = data.index(b"bad name!")
        error, = struct.unpack(">h", data[at - 4:at - 2])
        self.assertEqual(error, 17)  # INVALID_TOPIC_EXCEPTION
        listing = json.loads(self.depot.kcat("-L", "-J"))
        self.assertEqual(listing["topics"], [])

    def test_api_versions_newer_than_served_get_unsupported_version_in_v0_format(self):
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            s.sendall(request(18, 99, 5, flexible=True))
            data = read_response(s)
            correlation, error, count = struct.unpack(">ihi", data[:10])
            self.assertEqual((correlation, error), (5, 35))
            apis = {struct.unpack(">hhh", data[10 + 6 * i:16 + 6 * i])[0]:
                    struct.unpack(">hhh", data[10 + 6 * i:16 + 6 * i])[1:] for i in range(count)}
            self.assertEqual(apis, {18: (0, 4), 3: (0, 12)})  # exactly what is served
            # Pipelined requests are answered in order (kafka-python sends these two together).
            s.sendall(request(18, 0, 6) + request(3, 0, 7, struct.pack(">i", 0)))
            self.assertEqual(struct.unpack(">i", read_response(s)[:4])[0], 6)
            self.assertEqual(struct.unpack(">i", read_response(s)[:4])[0], 7)

    def test_unserved_apis_and_oversized_or_cut_requests_close_the_connection(self):
        cases = ((request(0, 7, 1, b"\x00" * 20), False),        # Produce: not served yet
                 (struct.pack(">i", 200 << 20), False),           # over socket.request.max.bytes
                 (struct.pack(">i", 10) + b"\x00\x03", True))     # cut short, then the peer goes
        for payload, then_leave in cases:
            with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
                s.sendall(payload)
                if then_leave:
                    s.shutdown(socket.SHUT_WR)
                self.assertIsNone(read_response(s))
        # The broker is still fine.
        self.assertIn("brokers", json.loads(self.depot.kcat("-L", "-J")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
