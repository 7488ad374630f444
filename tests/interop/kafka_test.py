"""Kafka interop: kcat and python3-confluent-kafka (both librdkafka) and raw requests against a
spawned depot's Kafka face.

Run by ctest with DEPOT_BINARY set, under /usr/bin/python3 (where Debian's confluent_kafka is).
"""
import json
import socket
import struct
import subprocess
import time
import unittest

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions, NewTopic)

from spawned_depot import SpawnedDepot


# API key -> (min, max) version: what depot serves, and so exactly what ApiVersions advertises.
SERVED = {0: (3, 11), 1: (4, 17), 2: (1, 10), 3: (0, 12), 8: (0, 9), 9: (0, 9), 10: (0, 6),
          11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 5), 16: (0, 5), 17: (0, 1),
          18: (0, 4), 36: (0, 2),
          19: (0, 7), 20: (0, 6), 22: (0, 5), 32: (0, 4), 33: (0, 2), 37: (0, 3), 42: (0, 2),
          44: (0, 1)}


class Depot(SpawnedDepot):
    def __init__(self, extra=()):
        super().__init__("kafka", extra)

    def kcat(self, *args, input=None):
        out = subprocess.run(["kcat", "-b", f"127.0.0.1:{self.port}", *args], input=input,
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise AssertionError(f"kcat {args} failed: {out.stderr}")
        return out.stdout

    def consume_all(self, topic, partition=0, fmt="%k=%s@%o\n"):
        """Every record of a partition, from the beginning, via kcat."""
        return self.kcat("-C", "-t", topic, "-p", str(partition), "-o", "beginning", "-e",
                         "-q", "-f", fmt).splitlines()

    def admin(self):
        return AdminClient({"bootstrap.servers": f"127.0.0.1:{self.port}"})

    def producer(self, **config):
        settings = {"bootstrap.servers": f"127.0.0.1:{self.port}", "acks": "all",
                    "enable.idempotence": True, "linger.ms": 5}
        settings.update(config)
        return Producer(settings)


def drain(consumer, count):
    """The values of up to `count` messages polled within 30 s; errors (a broker away) skipped."""
    seen = []
    deadline = time.time() + 30
    while len(seen) < count and time.time() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            seen.append(msg.value().decode())
    return seen


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

    def test_admin_requests_naming_a_topic_twice_act_on_neither_entry(self):
        def kstr(text):
            return struct.pack(">h", len(text)) + text.encode()

        def entries(data):
            # v0 responses (after the correlation id): [name error_code]
            count, = struct.unpack(">i", data[4:8])
            at, out = 8, []
            for _ in range(count):
                n, = struct.unpack(">h", data[at:at + 2])
                name = data[at + 2:at + 2 + n].decode()
                error, = struct.unpack(">h", data[at + 2 + n:at + 4 + n])
                out.append((name, error))
                at += 4 + n
            return out

        def topic(name):  # CreateTopics v0: name, partitions, replication, no assignments or configs
            return kstr(name) + struct.pack(">ihii", 1, 1, 0, 0)

        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            body = struct.pack(">i", 3) + topic("twice") + topic("once") + topic("twice")
            s.sendall(request(19, 0, 1, body + struct.pack(">i", 5000)))
            created = entries(read_response(s))
            self.assertEqual(sorted(created), [("once", 0), ("twice", 42)])  # INVALID_REQUEST
            body = struct.pack(">i", 2) + kstr("once") + kstr("once") + struct.pack(">i", 5000)
            s.sendall(request(20, 0, 2, body))
            self.assertEqual(entries(read_response(s)), [("once", 42)])

            def alter(*resources):  # AlterConfigs v0: [type name [key value]] validate_only
                body = struct.pack(">i", len(resources))
                for name, settings in resources:
                    body += struct.pack(">b", 2) + kstr(name) + struct.pack(">i", len(settings))
                    body += b"".join(kstr(k) + kstr(v) for k, v in settings)
                s.sendall(request(33, 0, 3, body + b"\x00"))
                data = read_response(s)
                count, = struct.unpack(">i", data[8:12])
                errors = []
                at = 12
                for _ in range(count):
                    error, n = struct.unpack(">hh", data[at:at + 4])
                    at += 4 + max(n, 0) + 1
                    n, = struct.unpack(">h", data[at:at + 2])
                    errors.append((data[at + 2:at + 2 + n].decode(), error))
                    at += 2 + n
                return errors

            retention = ("retention.ms", "1000")
            self.assertEqual(alter(("once", [retention]), ("once", [retention])), [("once", 42)])
            self.assertEqual(alter(("once", [retention, retention])), [("once", 42)])
            self.assertEqual(alter(("once", [retention])), [("once", 0)])
        listing = json.loads(self.depot.kcat("-L", "-J"))
        self.assertEqual([t["topic"] for t in listing["topics"]], ["once"])

    def test_api_versions_newer_than_served_get_unsupported_version_in_v0_format(self):
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            s.sendall(request(18, 99, 5, flexible=True))
            data = read_response(s)
            correlation, error, count = struct.unpack(">ihi", data[:10])
            self.assertEqual((correlation, error), (5, 35))
            apis = {struct.unpack(">hhh", data[10 + 6 * i:16 + 6 * i])[0]:
                    struct.unpack(">hhh", data[10 + 6 * i:16 + 6 * i])[1:] for i in range(count)}
            # Exactly what is served.
            self.assertEqual(apis, SERVED)
            # Pipelined requests are answered in order (kafka-python sends these two together).
            s.sendall(request(18, 0, 6) + request(3, 0, 7, struct.pack(">i", 0)))
            self.assertEqual(struct.unpack(">i", read_response(s)[:4])[0], 6)
            self.assertEqual(struct.unpack(">i", read_response(s)[:4])[0], 7)

    def test_unserved_apis_and_oversized_or_cut_requests_close_the_connection(self):
        cases = ((request(0, 2, 1, b"\x00" * 20), False),        # Produce v2: not served
                 (request(57, 0, 1, b"\x00" * 20), False),       # an API depot does not serve
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


    def test_kcat_produces_and_consumes_keyed_records_across_a_restart(self):
        lines = "".join(f"k{i}:value {i}\n" for i in range(50))
        self.depot.kcat("-P", "-t", "events", "-K", ":", input=lines)
        expected = [f"k{i}=value {i}@{i}" for i in range(50)]
        self.assertEqual(self.depot.consume_all("events"), expected)
        self.depot.restart()
        self.assertEqual(self.depot.consume_all("events"), expected)
        # Appends continue from the log's end.
        self.depot.kcat("-P", "-t", "events", "-K", ":", input="late:arrival\n")
        self.assertEqual(self.depot.consume_all("events")[-1], "late=arrival@50")

    def test_idempotent_compressed_acks_all_produce_survives_a_sigkill(self):
        acked = []
        for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
            producer = self.depot.producer(**{"compression.codec": codec})
            for i in range(200):
                producer.produce("orders", key=f"{codec}-{i}", value=f"order {i} " * 10,
                                 on_delivery=lambda err, msg: acked.append(
                                     (err, msg.key().decode(), msg.offset())))
            self.assertEqual(producer.flush(30), 0)
        self.assertEqual([e for e in acked if e[0] is not None], [])
        self.assertEqual([o for _, _, o in acked], list(range(1000)))
        # Acknowledged under fsync=always: all there after the process is killed.
        self.depot.restart(kill=True)
        keys = [line.split("=")[0] for line in self.depot.consume_all("orders")]
        self.assertEqual(keys, [k for _, k, _ in acked])

    def test_a_large_backlog_is_read_back_whole_and_in_order(self):
        # Fetches of a megabyte and more are sent from the segment files (sendfile): every byte
        # must still arrive where it belongs.
        admin = self.depot.admin()  # kept alive until the topic is made
        admin.create_topics([NewTopic("backlog", num_partitions=2)])["backlog"].result(10)
        producer = self.depot.producer(**{"linger.ms": 20})
        count = 20000
        for i in range(count):
            filler = bytes((i * 31 + j) % 251 for j in range(64)) * 15
            producer.produce("backlog", key=str(i), value=b"%d:" % i + filler, partition=i % 2)
        self.assertEqual(producer.flush(60), 0)
        consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{self.depot.port}",
                             "group.id": "backlog-reader", "enable.auto.commit": False})
        consumer.assign([TopicPartition("backlog", p, 0) for p in range(2)])
        seen = {0: [], 1: []}
        deadline = time.time() + 60
        while sum(map(len, seen.values())) < count and time.time() < deadline:
            for msg in consumer.consume(1000, 1.0):
                self.assertIsNone(msg.error())
                i = int(msg.key())
                filler = bytes((i * 31 + j) % 251 for j in range(64)) * 15
                self.assertEqual(msg.value(), b"%d:" % i + filler)
                seen[msg.partition()].append((msg.offset(), i))
        consumer.close()
        for p in range(2):
            self.assertEqual(seen[p], [(n, 2 * n + p) for n in range(count // 2)])

    def test_list_offsets_by_time_finds_where_to_replay_from(self):
        producer = self.depot.producer()
        base = int(time.time() * 1000) - 100000
        for i in range(10):
            producer.produce("clock", value=f"tick {i}", timestamp=base + i * 1000)
        self.assertEqual(producer.flush(30), 0)
        # kcat -Q asks ListOffsets for the first offset at or after a time.
        answer = self.depot.kcat("-Q", "-t", f"clock:0:{base + 4500}")
        self.assertIn("offset 5", answer)
        answer = self.depot.kcat("-Q", "-t", f"clock:0:{base + 99999999}")
        self.assertIn("offset -1", answer)
        # Consuming from an offset: kcat -o 7.
        replay = self.depot.kcat("-C", "-t", "clock", "-o", "7", "-e", "-q", "-f", "%s\n")
        self.assertEqual(replay.splitlines(), ["tick 7", "tick 8", "tick 9"])

    def test_fetch_long_polls_until_data_arrives(self):
        self.depot.kcat("-L", "-t", "waiting")  # creates it
        fetch = fetch_v4("waiting", 0, 0, max_wait_ms=5000)
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=10) as s:
            start = time.time()
            s.sendall(request(1, 4, 21, fetch))
            time.sleep(0.3)
            self.depot.kcat("-P", "-t", "waiting", input="wake up\n")
            data = read_response(s)
            waited = time.time() - start
        self.assertLess(waited, 4.5)  # answered by the append, not the 5 s timeout
        self.assertIn(b"wake up", data)

    def test_bad_batches_get_kafka_errors_and_leave_the_log_intact(self):
        self.depot.kcat("-P", "-t", "guarded", input="good\n")
        batch = record_batch(b"payload")
        corrupt = bytearray(batch)
        corrupt[-1] ^= 0xFF  # the CRC no longer matches
        magic1 = bytearray(batch)
        magic1[16] = 1
        cases = [(bytes(corrupt), 2), (bytes(magic1), 2), (batch[:40], 2)]
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            for correlation, (records, code) in enumerate(cases):
                s.sendall(request(0, 7, correlation, produce_v7("guarded", 0, records)))
                data = read_response(s)
                self.assertEqual(struct.unpack(">i", data[:4])[0], correlation)
                self.assertEqual(produce_v7_error(data), code, records)
            # Pipelined produces are appended in order and answered in order.
            s.sendall(b"".join(request(0, 7, 100 + i, produce_v7("guarded", 0, batch))
                               for i in range(5)))
            offsets = []
            for i in range(5):
                data = read_response(s)
                self.assertEqual(struct.unpack(">i", data[:4])[0], 100 + i)
                self.assertEqual(produce_v7_error(data), 0)
                offsets.append(produce_v7_base_offset(data))
            self.assertEqual(offsets, [1, 2, 3, 4, 5])
            # acks=0 gets no answer at all; the next request's answer comes next.
            s.sendall(request(0, 7, 50, produce_v7("guarded", 0, batch, acks=0)))
            s.sendall(request(18, 0, 51))
            self.assertEqual(struct.unpack(">i", read_response(s)[:4])[0], 51)
        self.assertEqual(self.depot.consume_all("guarded", fmt="%s\n"),
                         ["good"] + ["payload"] * 6)


    def test_admin_creates_configures_grows_and_deletes_topics(self):
        admin = self.depot.admin()
        futures = admin.create_topics([
            NewTopic("ledger", num_partitions=3, replication_factor=1,
                     config={"cleanup.policy": "compact", "retention.ms": "3600000"}),
            NewTopic("replicated", num_partitions=1, replication_factor=3),
            NewTopic("badly-set", num_partitions=1, config={"cleanup.policy": "sometimes"}),
        ])
        futures["ledger"].result(10)
        with self.assertRaisesRegex(Exception, "INVALID_REPLICATION_FACTOR"):
            futures["replicated"].result(10)
        with self.assertRaisesRegex(Exception, "INVALID_CONFIG"):
            futures["badly-set"].result(10)
        with self.assertRaisesRegex(Exception, "TOPIC_ALREADY_EXISTS"):
            admin.create_topics([NewTopic("ledger", num_partitions=1)])["ledger"].result(10)
        topics = admin.list_topics(timeout=10).topics
        self.assertEqual(sorted(topics), ["ledger"])
        self.assertEqual(len(topics["ledger"].partitions), 3)

        def described():
            resource = ConfigResource(ConfigResource.Type.TOPIC, "ledger")
            entries = admin.describe_configs([resource])[resource].result(10)
            return {name: (e.value, e.is_default) for name, e in entries.items()}
        configs = described()
        # Synonyms, most specific first: the topic's own value, then the broker default's.
        resource = ConfigResource(ConfigResource.Type.TOPIC, "ledger")
        entries = admin.describe_configs([resource])[resource].result(10)
        self.assertEqual([(name, s.value) for name, s in entries["retention.ms"].synonyms.items()],
                         [("retention.ms", "3600000"), ("log.retention.ms", "604800000")])
        self.assertEqual(list(entries["segment.bytes"].synonyms), ["log.segment.bytes"])
        self.assertEqual(configs["cleanup.policy"], ("compact", False))
        self.assertEqual(configs["retention.ms"], ("3600000", False))
        self.assertEqual(configs["max.message.bytes"], ("1048588", True))
        # AlterConfigs replaces the set: what is not named goes back to its default.
        resource = ConfigResource(ConfigResource.Type.TOPIC, "ledger",
                                  set_config={"retention.ms": "60000"})
        admin.alter_configs([resource])[resource].result(10)
        configs = described()
        self.assertEqual(configs["retention.ms"], ("60000", False))
        self.assertEqual(configs["cleanup.policy"], ("delete", True))
        # Settings and partitions last across a restart.
        admin.create_partitions([NewPartitions("ledger", 5)])["ledger"].result(10)
        with self.assertRaisesRegex(Exception, "INVALID_PARTITIONS"):
            admin.create_partitions([NewPartitions("ledger", 2)])["ledger"].result(10)
        self.depot.restart()
        admin = self.depot.admin()
        self.assertEqual(len(admin.list_topics(timeout=10).topics["ledger"].partitions), 5)
        self.assertEqual(described()["retention.ms"], ("60000", False))
        admin.delete_topics(["ledger"])["ledger"].result(10)
        with self.assertRaisesRegex(Exception, "UNKNOWN_TOPIC_OR_PART"):
            admin.delete_topics(["ledger"])["ledger"].result(10)
        self.assertEqual(list(admin.list_topics(timeout=10).topics), [])

    def test_a_consumer_group_commits_and_resumes_after_a_restart(self):
        admin = self.depot.admin()
        admin.create_topics([NewTopic("work", num_partitions=2)])["work"].result(10)
        producer = self.depot.producer()
        for i in range(40):
            producer.produce("work", key=str(i), value=f"job {i}", partition=i % 2)
        self.assertEqual(producer.flush(30), 0)

        def consumer():
            return Consumer({"bootstrap.servers": f"127.0.0.1:{self.depot.port}",
                             "group.id": "workers", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False, "session.timeout.ms": 6000})

        first = consumer()
        first.subscribe(["work"])
        got = drain(first, 30)
        self.assertEqual(len(got), 30)
        first.commit(asynchronous=False)
        first.close()
        self.depot.restart()
        second = consumer()
        # The committed offsets survived the restart: 30 consumed between the two partitions.
        committed = second.committed([TopicPartition("work", 0), TopicPartition("work", 1)], 10)
        self.assertEqual(sum(tp.offset for tp in committed), 30)
        second.subscribe(["work"])
        rest = drain(second, 10)
        second.close()
        # Together: every job once.
        self.assertEqual(sorted(got + rest), sorted(f"job {i}" for i in range(40)))


    def test_a_group_carries_on_across_a_kill_without_a_rebalance(self):
        admin = self.depot.admin()
        admin.create_topics([NewTopic("events", num_partitions=2)])["events"].result(10)

        def produce(first, count):
            producer = self.depot.producer()
            for i in range(first, first + count):
                producer.produce("events", value=f"event {i}", partition=i % 2)
            self.assertEqual(producer.flush(30), 0)

        produce(0, 10)
        assigned, revoked = [], []
        consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{self.depot.port}",
                             "group.id": "steady", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False, "session.timeout.ms": 6000,
                             "heartbeat.interval.ms": 500, "reconnect.backoff.max.ms": 200})
        consumer.subscribe(
            ["events"],
            on_assign=lambda c, ps: assigned.append(sorted(p.partition for p in ps)),
            on_revoke=lambda c, ps: revoked.append(sorted(p.partition for p in ps)))

        def members():
            (group,) = admin.list_groups("steady", timeout=10)
            return group.state, sorted(m.id for m in group.members)

        self.assertEqual(len(drain(consumer, 10)), 10)
        state, before = members()
        self.assertEqual((state, len(before)), ("Stable", 1))

        # Killed, not stopped: the group was written when its generation became Stable.
        self.depot.restart(kill=True)
        produce(10, 10)
        self.assertEqual(sorted(drain(consumer, 10)), sorted(f"event {i}" for i in range(10, 20)))
        drain_until = time.time() + 1.5  # three heartbeats, each would have been told to rejoin
        while time.time() < drain_until:
            consumer.poll(0.1)
        # The member kept its id and generation: one assignment, never revoked.
        self.assertEqual(members(), ("Stable", before))
        self.assertEqual(assigned, [[0, 1]])
        self.assertEqual(revoked, [])
        consumer.close()


class KafkaSaslTest(unittest.TestCase):
    """With --kafka-users, nothing but ApiVersions and SASL is served before authentication."""

    def setUp(self):
        self.depot = Depot(["--kafka-users", "alice:secret,bob:hunter2"])

    def tearDown(self):
        output = self.depot.output()
        self.assertEqual(self.depot.stop(), 0, output)

    def kcat(self, mechanism, user, password, *args, input=None):
        return self.depot.kcat("-X", "security.protocol=SASL_PLAINTEXT",
                               "-X", f"sasl.mechanisms={mechanism}",
                               "-X", f"sasl.username={user}", "-X", f"sasl.password={password}",
                               *args, input=input)

    def test_plain_and_scram_users_produce_and_consume(self):
        self.kcat("PLAIN", "alice", "secret", "-P", "-t", "private", input="from alice\n")
        self.kcat("SCRAM-SHA-256", "bob", "hunter2", "-P", "-t", "private", input="from bob\n")
        got = self.kcat("SCRAM-SHA-256", "alice", "secret", "-C", "-t", "private",
                        "-o", "beginning", "-e", "-q", "-f", "%s\n")
        self.assertEqual(got.splitlines(), ["from alice", "from bob"])
        self.assertIn("authenticated as 'bob'", self.depot.output())

    def test_wrong_passwords_and_unauthenticated_requests_are_refused(self):
        for mechanism in ("PLAIN", "SCRAM-SHA-256"):
            with self.assertRaisesRegex(AssertionError, "Authentication failed"):
                self.kcat(mechanism, "alice", "wrong", "-L", "-m", "3")
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            s.sendall(request(3, 1, 1, struct.pack(">i", -1)))  # Metadata before SASL
            self.assertIsNone(read_response(s))

    def test_handshake_v0_then_bare_plain_tokens(self):
        # kafka-python's way: SaslHandshake v0, then the token framed by a size only.
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            mechanism = b"PLAIN"
            s.sendall(request(17, 0, 1, struct.pack(">h", len(mechanism)) + mechanism))
            data = read_response(s)
            self.assertEqual(struct.unpack(">ih", data[:6]), (1, 0))
            self.assertIn(b"SCRAM-SHA-256", data)
            token = b"\0alice\0secret"
            s.sendall(struct.pack(">i", len(token)) + token)
            self.assertEqual(read_response(s), b"")  # an empty frame: authenticated
            s.sendall(request(3, 1, 2, struct.pack(">i", -1)))
            self.assertEqual(struct.unpack(">i", read_response(s)[:4])[0], 2)
        with socket.create_connection(("127.0.0.1", self.depot.port), timeout=5) as s:
            s.sendall(request(17, 0, 1, struct.pack(">h", 5) + b"PLAIN"))
            read_response(s)
            token = b"\0alice\0nope"
            s.sendall(struct.pack(">i", len(token)) + token)
            self.assertIsNone(read_response(s))  # a failed bare exchange closes

def produce_v7(topic, partition, records, acks=-1):
    name = topic.encode()
    return (struct.pack(">hhii", -1, acks, 5000, 1) + struct.pack(">h", len(name)) + name +
            struct.pack(">iii", 1, partition, len(records)) + records)


def produce_v7_error(response):
    # correlation, topics[1], name, partitions[1], index, error_code ...
    at = 4 + 4
    (name_len,) = struct.unpack(">h", response[at:at + 2])
    at += 2 + name_len + 4 + 4
    return struct.unpack(">h", response[at:at + 2])[0]


def produce_v7_base_offset(response):
    at = 4 + 4
    (name_len,) = struct.unpack(">h", response[at:at + 2])
    at += 2 + name_len + 4 + 4 + 2
    return struct.unpack(">q", response[at:at + 8])[0]


def fetch_v4(topic, partition, offset, max_wait_ms):
    name = topic.encode()
    return (struct.pack(">iiiib", -1, max_wait_ms, 1, 1 << 20, 0) + struct.pack(">i", 1) +
            struct.pack(">h", len(name)) + name + struct.pack(">iiqi", 1, partition, offset, 1 << 20))


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(n):
    n = (n << 1) ^ (n >> 63)
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def record_batch(value):
    """One uncompressed RecordBatch v2 holding a single record with a null key."""
    body = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(len(value)) + value + varint(0)
    record = varint(len(body)) + body
    now = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 0, 0, now, now, -1, -1, -1, 1) + record
    crc = crc32c(after_crc)
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length

if __name__ == "__main__":
    unittest.main(verbosity=2)
