"""Bundle verification rate against raw Ed25519 verification in the same run.

    python bench/verify_rate.py [--quick] [--records K]

A range bundle of K records (20k with --quick, 200k otherwise) is exported from a filled,
anchored journal (see export.py), round-tripped through JSON as a file would be, and checked
with ``ledger_client.verify.verify_bundle`` (gateway key pinned). Every record costs at
least one Ed25519 verification, so the baseline is a tight ``public_key.verify(sig, msg)``
loop over exactly the same record messages: the ratio says how close the verifier is to the
signature floor (target ≥ 0.8×). The note splits the rest: canonical JSON (RFC 8785) of each
record, and the RFC 9162 inclusion check. Without --quick, the whole exported 1M bundle is
also verified with the CLI when a bundle path is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, Result, print_table

from gateway.app import config as configmod
from gateway.chain.export import export_range
from gateway.journal import Journal
from gateway.testing.station import StationDir
from ledger_client.canonical import canonical, record_message
from ledger_client.keys import public_from_hex
from ledger_client.merkle import hash_leaf, verify_inclusion
from ledger_client.verify import default_checkers, verify_bundle


def _threads(n: int) -> int:
    """How many threads verify_bundle uses for record signatures on a bundle of n records."""
    from ledger_client.verify import records as v  # where PARALLEL_* live

    return 1 if n < v.PARALLEL_MIN_RECORDS else max(1, min(os.cpu_count() or 1, 8))


def run(quick: bool, *, records: int | None = None, station: StationDir | None = None, full_bundle: Path | None = None,
        base: str | None = None, log: Any = print) -> list[Result]:
    k = records or (20_000 if quick else 200_000)
    if station is None:
        from export import prepare

        station = prepare(k + 2000, base, log)
    cfg = configmod.load(station.config_path)
    from export import sensor_span

    t_lo, t_hi, _ = sensor_span(station, k)
    j = Journal(cfg.journal.path, readonly=True)
    log(f"[verify] exporting a range of ~{k:,} records …")
    bundle = json.loads(json.dumps(export_range(j, "probe-1", t_lo, t_hi)))
    j.close()
    n = len(bundle["records"])
    key_hex = bundle["gateway"]["public_key"]
    pub = public_from_hex(key_hex)

    recs = [e["record"] for e in bundle["records"]]
    msgs = [record_message(canonical(r)) for r in recs]
    sigs = [bytes.fromhex(e["sig"]) for e in bundle["records"]]

    def raw_openssl() -> float:
        t = time.perf_counter()
        for s, m in zip(sigs, msgs):
            pub.verify(s, m)
        return time.perf_counter() - t

    # The floor is the fastest Ed25519 verification on this machine: libsodium (what
    # verify_bundle uses since PyNaCl came in), called as bare as Python allows.
    from nacl.bindings import crypto_sign_open

    pub_raw = pub.public_bytes_raw()

    def raw_verify() -> float:
        t = time.perf_counter()
        for s, m in zip(sigs, msgs):
            crypto_sign_open(s + m, pub_raw)
        return time.perf_counter() - t

    # the raw baselines bracket the verification (before and after, mean) so load bursts
    # from other processes hit both sides alike
    t_raw_a = raw_verify()
    t_ossl_a = raw_openssl()
    log(f"[verify] verify_bundle on {n:,} records, {len(bundle['blocks'])} blocks …")
    t = time.perf_counter()
    report = verify_bundle(bundle, gateway_key=key_hex, checkers=default_checkers())
    t_verify = time.perf_counter() - t
    assert report.ok, report.as_dict()
    t_ossl = (t_ossl_a + raw_openssl()) / 2
    t_raw = (t_raw_a + raw_verify()) / 2
    t = time.perf_counter()
    msgs = [record_message(canonical(r)) for r in recs]
    t_canon = time.perf_counter() - t
    heads = {b["header"]["block"]: b["header"] for b in bundle["blocks"]}
    t = time.perf_counter()
    for e, m in zip(bundle["records"], msgs):
        h = heads[e["block"]]
        verify_inclusion(e["index"], h["size"], hash_leaf(m[len(b"traceseal/record/v1\n"):]),
                         [bytes.fromhex(p) for p in e["proof"]], bytes.fromhex(h["root"]))
    t_incl = time.perf_counter() - t

    rate, raw = n / t_verify, n / t_raw
    res = [Result(f"verify_bundle, {n / 1000:.0f}k-record range bundle", f"{rate:,.0f} rec/s", f"{raw:,.0f} verify/s",
                  rate / raw, "≥ 0.80×", rate / raw >= 0.8,
                  note=f"baseline = raw libsodium Ed25519 verify of the same record messages on ONE thread; "
                       f"verify_bundle checks record signatures on {_threads(n)} thread(s) (libsodium releases "
                       f"the GIL), the rest of its work on one; single-thread costs per record: Ed25519 "
                       f"{t_raw / n * 1e6:.0f} µs, canonical {t_canon / n * 1e6:.0f} µs, inclusion "
                       f"{t_incl / n * 1e6:.0f} µs; verify_bundle took {t_verify / n * 1e6:.0f} µs per record "
                       f"wall-clock"),
           Result("verify_bundle vs raw OpenSSL verify (the baseline before PyNaCl)", f"{rate:,.0f} rec/s",
                  f"{n / t_ossl:,.0f} verify/s", rate / (n / t_ossl), "—", None,
                  note="cryptography's Ed25519PublicKey.verify over the same messages")]
    if full_bundle is not None and not quick:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        log(f"[verify] CLI verify of {full_bundle} …")
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "ledger_client", "verify", str(full_bundle),
                            "--gateway-key", key_hex],
                           capture_output=True, text=True, env=env, cwd=str(REPO), check=False)
        dt = time.perf_counter() - t
        nn = len(json.loads(full_bundle.read_text())["records"])
        res.append(Result(f"CLI verify of the exported {nn / 1e6:.2f}M bundle", f"{dt:.0f} s ({nn / dt:,.0f} rec/s)",
                          f"{nn / raw:.0f} s", (nn / raw) / dt, "≥ 0.80×", (nn / raw) / dt >= 0.8,
                          note=f"exit {p.returncode}; baseline = raw verify of as many records at the rate above"))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--records", type=int, default=None)
    args = ap.parse_args()
    print_table(run(args.quick, records=args.records), "\nverification")


if __name__ == "__main__":
    main()
