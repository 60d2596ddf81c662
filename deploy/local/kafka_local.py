"""A real Apache Kafka broker (single-node KRaft) for the local stack and the tests.

The broker's jars are resolved once from Maven Central with the machine's `mvn` into the
git-ignored `.local/kafka/libs` (see `deploy/local/kafka/pom.xml`); later runs reuse them. A broker
lives in a data directory: formatted on first start, reused after, on free loopback ports.

    python -m deploy.local.kafka_local resolve
    python -m deploy.local.kafka_local start --dir .local/kafka/broker [--port 9092]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.local.ports import free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parents[2]
POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
LOG4J = Path(__file__).resolve().parent / "kafka" / "log4j2.yaml"
LIBS = ROOT / ".local" / "kafka" / "libs"
RESOLVED = LIBS / ".resolved"
JAVA_OPTS = [
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
]


class KafkaSetupError(RuntimeError):
    """The broker could not be resolved or started; the message says what to do."""


def resolve(libs: Path = LIBS) -> Path:
    """Copy the broker and its runtime dependencies from Maven Central into `libs` (once)."""
    marker = libs / ".resolved"
    if marker.exists() and marker.stat().st_mtime >= POM.stat().st_mtime:
        return libs
    if shutil.which("mvn") is None:
        raise KafkaSetupError("mvn is not on PATH: install Maven (apt-get install maven)")
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaSetupError(
            f"Maven could not resolve the Kafka broker:\n{result.stdout}\n{result.stderr}"
        )
    marker.touch()
    return libs


def _java(libs: Path, main: str, *args: str) -> list[str]:
    return [
        "java",
        *JAVA_OPTS,
        f"-Dlog4j2.configurationFile={LOG4J}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


@dataclass
class KafkaBroker:
    """One KRaft broker+controller on 127.0.0.1, its state under `data_dir`."""

    data_dir: Path
    port: int = 0
    libs: Path = LIBS
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self, controller_port: int) -> Path:
        logs = self.data_dir / "logs"
        config = self.data_dir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={logs}",
                    "auto.create.topics.enable=false",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=8",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    "group.min.session.timeout.ms=1000",
                    "log.segment.bytes=67108864",
                    "",
                ]
            )
        )
        return config

    def start(self, timeout: float = 180.0) -> KafkaBroker:
        """Start the broker; return once it listens. On a loaded machine (2 cores, load average
        25) a start has taken more than 60 s."""
        resolve(self.libs)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self._write_config(free_port())
        if not (self.data_dir / "logs" / "meta.properties").exists():
            cluster_id = subprocess.run(
                _java(self.libs, "kafka.tools.StorageTool", "random-uuid"),
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            subprocess.run(
                _java(
                    self.libs,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(config),
                ),
                capture_output=True,
                check=True,
            )
        with (self.data_dir / "broker.log").open("ab") as log:
            self.process = subprocess.Popen(
                _java(self.libs, "kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self.process
        try:
            wait_until(
                lambda: port_open("127.0.0.1", self.port),
                timeout=timeout,
                what=f"Kafka broker on {self.bootstrap} (log: {self.data_dir}/broker.log)",
                alive=lambda: process.poll() is None,
            )
        except BaseException:
            self.kill()  # not ready in time: never leave a broker behind that nobody stops
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop the broker the hard way (SIGKILL), for fault tests."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.kafka_local")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("resolve", help="resolve the broker jars from Maven Central (once)")
    start = sub.add_parser("start", help="start a broker in the foreground")
    start.add_argument("--dir", type=Path, default=ROOT / ".local" / "kafka" / "broker")
    start.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "resolve":
            began = time.monotonic()
            libs = resolve()
            print(f"Kafka broker jars in {libs} ({time.monotonic() - began:.1f} s)")
            return 0
        broker = KafkaBroker(args.dir, args.port).start()
    except KafkaSetupError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Kafka broker listening on {broker.bootstrap} (pid {os.getpid()})", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: broker.stop())
    assert broker.process is not None
    try:
        return broker.process.wait()
    except KeyboardInterrupt:
        broker.stop()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
