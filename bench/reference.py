"""The reference pipeline every ingest figure is compared with: the least a durable,
signing MQTT ingester has to do, written plainly.

paho-mqtt 2.x, MQTT 5, QoS 1, persistent session, ``manual_ack=True``, Receive Maximum 100
→ ``json.loads`` → Ed25519 sign (one key) → batched insert into SQLite (WAL,
``synchronous=FULL``, one transaction per batch) → PUBACK after the COMMIT. One writer
thread; paho's network thread only enqueues. No admission, no per-sensor signature
verification, no canonical JSON, no replay check, no blocks, no anchoring: the gap between
this and traceseal is the price of those.

Run by the benches as a child (same line protocol as gwproc.py):

    python bench/reference.py --port P --topic T --db FILE [--client-id ID] [--register]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sqlite3
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SCHEMA = """CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,
sensor TEXT, ctr INTEGER, body BLOB NOT NULL, sig BLOB NOT NULL)"""


class Reference:
    def __init__(self, port: int, topic: str, db_path: str, client_id: str, receive_maximum: int = 100,
                 batch_max: int = 500) -> None:
        self.port, self.topic, self.batch_max = port, topic, batch_max
        self.key = Ed25519PrivateKey.generate()
        self.db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(SCHEMA)
        row = self.db.execute("SELECT MAX(seq) FROM records").fetchone()
        self.seq = 0 if row[0] is None else row[0] + 1
        self.inbox: queue.Queue[tuple[int, bytes]] = queue.Queue()
        self.stop = threading.Event()
        self.subscribed = threading.Event()
        self.receive_maximum = receive_maximum
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                  manual_ack=True)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.inbox.put((m.mid, m.payload))
        self.writer = threading.Thread(target=self._write, daemon=True)

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600
        props.ReceiveMaximum = self.receive_maximum
        self.writer.start()
        self.client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        self.client.loop_start()

    def _write(self) -> None:
        sign, loads, dumps = self.key.sign, json.loads, json.dumps
        while not self.stop.is_set():
            try:
                batch = [self.inbox.get(timeout=0.25)]
            except queue.Empty:
                continue
            while len(batch) < self.batch_max:  # whatever has arrived; no waiting
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            now = int(time.time() * 1000)
            rows = []
            for _, payload in batch:
                msg = loads(payload)
                body = dumps({"seq": self.seq, "time_ms": now, "msg": msg}, separators=(",", ":")).encode()
                rows.append((self.seq, now, msg.get("sensor"), msg.get("ctr"), body, sign(body)))
                self.seq += 1
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?)", rows)
            self.db.execute("COMMIT")
            for mid, _ in batch:  # durable now
                self.client.ack(mid, 1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.stop.set()
        self.writer.join(5)
        self.db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--client-id", default=f"bench-ref-{uuid.uuid4().hex[:6]}")
    ap.add_argument("--register", action="store_true")
    args = ap.parse_args()
    ref = Reference(args.port, args.topic, args.db, args.client_id)
    print(f"ready {os.getpid()}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "go":
            ref.start()
            if ref.subscribed.wait(30):
                print("connected", flush=True)
            if args.register:
                ref.close()
                print("stopped", flush=True)
                return
        elif cmd == "stop":
            break
    ref.close()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
