"""Admission: only enrolled, authentic, fresh and plausible observations become records.

Checks, in order: sensor enrolled → signature by that sensor's key, or its HMAC tag (traceseal firmware)
→ topic names the sensor (a sensor cannot speak on another's topic) → counter strictly
increasing (replays and duplicates) → value physically plausible. Each refusal is a
:class:`Rejected` with a stable code that becomes the quarantine reason.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.core.errors import Rejected
from gateway.core.observation import Observation
from gateway.ingest.sensor_auth import SCHEME as HMAC_SCHEME
from gateway.ingest.sensor_auth import check as check_mac
from gateway.ingest.settings import AdmissionConfig, SensorConfig
from ledger_client.keys import public_from_hex, verifier

_RANGES = {"humidity": (0, 1000), "battery": (0, 100), "door": (0, 1), "power": (0, 1), "weight": (-10**9, 10**9)}


REPLAY_WINDOW = 4096  # counters this far below the newest are still accepted once (reordering)


class Admission:
    """Replay protection is an anti-replay *window* (as IPsec's, RFC 4303 §3.4.3), not "greater
    than the last": an MQTT client resends what it queued while disconnected AFTER newer
    messages (measured with paho 2.2 across broker restarts), so an older counter that was
    never seen is a genuine, acknowledged reading and must be kept. A counter already accepted,
    or older than the window, is refused.

    A counter far AHEAD of the newest (more than ``max_counter_jump``) is refused as
    ``counter-jump`` unless the next message of the same sensor confirms it (a counter just
    above the refused one, as HOTP resynchronises on consecutive values, RFC 4226 §7.4).
    Accepting a lone jump would make every later genuine reading of that probe "older than
    the window", so one forged or corrupted message could silence a probe; refusing every
    jump for good would lock out a probe whose firmware really skipped ahead (an update, a
    counter reserved in flash blocks). Memory and time per message stay constant whatever
    the counter: the window is a fixed 4096-bit integer and a jump beyond it clears it. A
    sensor's first message counts from 0, so a probe enrolled with a high counter needs two.
    """

    def __init__(self, sensors: dict[str, SensorConfig], cfg: AdmissionConfig,
                 counters: dict[str, tuple[int, int]]) -> None:
        self.sensors = sensors
        self.cfg = cfg
        # sensor -> (highest accepted counter, bitmap: bit i set = counter (highest - i) accepted)
        self.counters: dict[str, tuple[int, int]] = dict(counters)
        self._keys: dict[str, Callable[[bytes, bytes], bool]] = {
            s.id: verifier(public_from_hex(s.public_key)) for s in sensors.values() if s.public_key
        }
        self._macs: dict[str, bytes] = {s.id: s.hmac_key for s in sensors.values() if s.hmac_key}
        # sensor -> a refused far-ahead counter that the next message may confirm (memory only:
        # after a restart the confirmation starts over, which costs one more quarantined message)
        self.jumps: dict[str, int] = {}

    def check_message(self, obs: Observation, topic: str) -> bool:
        """Authenticate one message (all its observations share sensor, counter and proof).

        Returns whether it was cryptographically authenticated (else allow-listed only).
        """
        sc = self.sensors.get(obs.sensor)
        if sc is None:
            raise Rejected("unknown-sensor", f"sensor {obs.sensor!r} is not enrolled")
        key = self._keys.get(obs.sensor)
        authenticated = False
        if key is not None:
            if obs.proof is None:
                raise Rejected("unsigned", f"sensor {obs.sensor!r} is enrolled with a key but the message is unsigned")
            if obs.proof.sensor != obs.sensor:
                raise Rejected("bad-signature", f"signature is for {obs.proof.sensor!r}, not {obs.sensor!r}")
            if obs.proof.scheme != "ed25519":
                raise Rejected("bad-signature", f"sensor {obs.sensor!r} is enrolled with a public key but the "
                                                f"message carries an {obs.proof.scheme} tag")
            if not key(obs.proof.signature, obs.proof.message):
                raise Rejected("bad-signature", f"signature does not verify with {obs.sensor!r}'s enrolled key")
            authenticated = True
        elif obs.sensor in self._macs:
            self._check_mac(obs)
            authenticated = True
        if obs.source == "traceseal" and obs.sensor not in topic.split("/"):
            raise Rejected("topic-mismatch", f"sensor {obs.sensor!r} published on topic {topic!r}")
        return authenticated

    def _check_mac(self, obs: Observation) -> None:
        """HMAC-enrolled sensor (gateway/ingest/sensor_auth.py): "unsigned" without a tag, else "bad-mac"."""
        if obs.proof is None:
            raise Rejected("unsigned",
                           f"sensor {obs.sensor!r} is enrolled with an HMAC key but the message is unsigned")
        if obs.proof.scheme != HMAC_SCHEME:
            raise Rejected("bad-mac", f"sensor {obs.sensor!r} is enrolled with an HMAC key but the message "
                                      f"carries an {obs.proof.scheme} signature")
        if obs.proof.sensor != obs.sensor:
            raise Rejected("bad-mac", f"tag is for {obs.proof.sensor!r}, not {obs.sensor!r}")
        if not check_mac(self._macs[obs.sensor], obs.proof.message, obs.proof.signature):
            raise Rejected("bad-mac", f"HMAC tag does not verify with {obs.sensor!r}'s enrolled key")

    def counter_is_new(self, obs: Observation) -> bool:
        """Above every counter accepted from this sensor (so never journaled before)."""
        state = self.counters.get(obs.sensor)
        return obs.counter is not None and (state is None or obs.counter > state[0])

    def check_counter(self, obs: Observation) -> None:
        if obs.counter is None:
            return
        state = self.counters.get(obs.sensor)
        if state is None:  # a first message is measured from 0: it could otherwise lock the probe out
            self._check_jump(obs, 0)
            return
        if obs.counter > state[0]:
            self._check_jump(obs, state[0])
            return
        top, seen = state
        age = top - obs.counter
        if age >= REPLAY_WINDOW:
            raise Rejected("replayed-counter", f"counter {obs.counter} is older than the replay window "
                                               f"({REPLAY_WINDOW} below the newest, {top}) for {obs.sensor!r}")
        if seen >> age & 1:
            raise Rejected("replayed-counter", f"counter {obs.counter} was already accepted for {obs.sensor!r}")

    def _check_jump(self, obs: Observation, top: int) -> None:
        assert obs.counter is not None
        jump = obs.counter - top
        if jump <= self.cfg.max_counter_jump:
            return
        pending = self.jumps.get(obs.sensor)
        if pending is not None and 0 < obs.counter - pending <= REPLAY_WINDOW:
            return  # confirmed by a second message just above the refused one
        self.jumps[obs.sensor] = obs.counter
        if len(self.jumps) > 4 * len(self.sensors) + 64:  # bounded: only enrolled sensors get here
            self.jumps.pop(next(iter(self.jumps)))
        raise Rejected("counter-jump", f"counter {obs.counter} is {jump} ahead of the newest ({top}) for "
                                       f"{obs.sensor!r}, more than admission.max_counter_jump "
                                       f"({self.cfg.max_counter_jump}); a next message with a counter just "
                                       f"above it confirms the jump")

    def accept_counter(self, obs: Observation) -> None:
        if obs.counter is None:
            return
        self.jumps.pop(obs.sensor, None)
        state = self.counters.get(obs.sensor)
        if state is None:
            self.counters[obs.sensor] = (obs.counter, 1)
            return
        top, seen = state
        mask = (1 << REPLAY_WINDOW) - 1
        if obs.counter > top:
            shift = obs.counter - top  # never shift by more than the window: constant memory
            self.counters[obs.sensor] = (obs.counter, ((seen << shift) & mask | 1) if shift < REPLAY_WINDOW else 1)
        else:
            self.counters[obs.sensor] = (top, seen | (1 << (top - obs.counter)))

    def check_value(self, obs: Observation) -> None:
        v = obs.value
        if v is None:
            return
        if obs.kind == "temperature":
            lo, hi = self.cfg.temperature_min_mc, self.cfg.temperature_max_mc
        else:
            lo, hi = _RANGES.get(obs.kind, (-(2**53) + 1, 2**53 - 1))
        if not lo <= v <= hi:
            raise Rejected("implausible-value", f"{obs.kind} {v} {obs.unit} outside {lo}..{hi}")
