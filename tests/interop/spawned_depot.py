"""A depot spawned for an interop test: a fresh data directory, one face on a free loopback
port, the other faces off, its output in a log file. Shared by the Python interop suites."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

DEPOT = os.environ.get("DEPOT_BINARY", "build/release/depot")
FACES = ("jobs", "amqp", "kafka", "http")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SpawnedDepot:
    def __init__(self, face, extra=(), listen_host="127.0.0.1"):
        self.face = face
        # The face's address; "::" listens dual-stack, and clients still come to 127.0.0.1.
        self.listen = f"[{listen_host}]" if ":" in listen_host else listen_host
        self.dir = tempfile.mkdtemp(prefix=f"depot-{face}-")
        self.port = free_port()
        self.extra = list(extra)
        self.log = open(os.path.join(self.dir, "depot.log"), "w+")
        self.start()

    def start(self):
        listen = []
        for face in FACES:
            listen += [f"--{face}-listen",
                       f"{self.listen}:{self.port}" if face == self.face else "off"]
        self.process = subprocess.Popen(
            [DEPOT, "serve", "--data-dir", os.path.join(self.dir, "data"), *listen, *self.extra],
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
        """Stops it with SIGTERM, removes its directory, and returns its exit status."""
        self.process.terminate()
        code = self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return code
