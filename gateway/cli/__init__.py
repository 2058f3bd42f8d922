"""``traceseal``: keygen | run | status | export | verify.

Exit codes: 0 success; 1 verification failed (verify) or the gateway stopped on an error;
2 bad usage or configuration (the message names the key); 3 a runtime error (I/O, journal).

The commands live by group: ``journal`` (status, prune), ``export`` (export, report,
manifest), ``keys`` (keygen, web-token), ``rotate`` (rotate-key); ``run`` is here.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from gateway.app import config as configmod
from gateway.app import doctor
from gateway.app.config import check_files, named_files
from gateway.app.service import Gateway
from gateway.archive.cli import add_archive_parser
from gateway.cli import rotate as keyrotation
from gateway.cli.export import add_export_parser, add_manifest_parser, add_report_parser
from gateway.cli.journal import add_prune_parser, add_status_parser
from gateway.cli.keys import add_keygen_parser, add_web_token_parser
from gateway.core.errors import ConfigError
from ledger_client import cli as lcli
from ledger_client.errors import KeyFileError, TracesealError


def cmd_run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    check_files(named_files(cfg))  # every key, password, certificate: one line if unusable
    gw = Gateway(cfg)
    gw.run_forever()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Subcommands in the order ``traceseal --help`` lists them."""
    p = argparse.ArgumentParser(prog="traceseal", description="tamper-evident cold-chain and waste records")
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_keygen_parser(sub)
    r = sub.add_parser("run", help="run the gateway")
    r.add_argument("-c", "--config", type=Path, required=True)
    r.set_defaults(fn=cmd_run)
    add_status_parser(sub)
    add_prune_parser(sub)
    add_export_parser(sub)
    add_manifest_parser(sub)
    dr = sub.add_parser("doctor", help="check this deployment and say what to fix")
    doctor.add_doctor_args(dr)
    dr.set_defaults(fn=doctor.cmd_doctor)
    rk = sub.add_parser("rotate-key", help="replace the gateway key with a signed rotation record (gateway stopped)")
    keyrotation.add_rotate_args(rk)
    rk.set_defaults(fn=keyrotation.cmd_rotate_key)
    add_web_token_parser(sub)
    add_report_parser(sub)
    add_archive_parser(sub)
    v = sub.add_parser("verify", help="verify a bundle; exit 0 only if every step passes against a pinned "
                                      "gateway key (4: every step passed, key not pinned)")
    lcli.add_verify_args(v)
    v.set_defaults(fn=lcli.run_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.fn(args))
    except BrokenPipeError:
        return _stdout_closed()
    except ConfigError as exc:
        print(f"traceseal: {exc}", file=sys.stderr)
        return 2
    except KeyFileError as exc:
        print(f"traceseal: key: {exc}", file=sys.stderr)
        return 2
    except TracesealError as exc:
        print(f"traceseal: {exc}", file=sys.stderr)
        return 3


def _stdout_closed() -> int:
    """The reader went away (`traceseal archive status | head`): end quietly, as a tool killed
    by SIGPIPE would, instead of a traceback. SIGPIPE itself stays ignored (Python's default):
    the gateway's sockets must get EPIPE as an error, not kill the service. stdout is pointed
    at /dev/null so the interpreter's final flush does not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13  # 141, the shell's status for a SIGPIPE death
