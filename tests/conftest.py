from __future__ import annotations

import dis
import inspect
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.testing.mosquitto import Mosquitto


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One real Mosquitto for the session; tests keep apart by unique topics and client ids."""
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as m:
        yield m


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of the test's own, for tests that restart or stop it."""
    m = Mosquitto(tmp_path / "mosquitto")
    m.start()
    yield m
    m.stop()


# --------------------------------------------------------------------------- test tiers
# Each test is marked by what it starts (markers registered in pyproject.toml), found from its
# code rather than written by hand on 300 tests: the test function, every fixture in its
# closure, and - followed transitively - every helper function, class or kit module they name
# that lives in tests/, bench/ or gateway/testing/. A test that builds `Mosquitto(...)` in a
# helper without the `broker` fixture is therefore still marked `broker`. Over-marking is
# harmless (the test just leaves the fast tier); a missed mark is caught in `--fast` runs by
# the spawn guard below. `scripts/test --fast` (= `pytest --fast`) runs only unmarked tests.
ROOT = Path(__file__).resolve().parents[1]
TIERS = ("broker", "anvil", "postgres", "browser", "kill", "faults")
# A name in a test's code (global, attribute or function-level import) -> what it starts.
# Matched by name, so a function-level `from playwright.sync_api import sync_playwright` counts.
STARTERS = {
    "Mosquitto": "broker",          # gateway/testing/mosquitto.py
    "Central": "broker",            # gateway/testing/upstream.py: a broker with TLS and users
    "Anvil": "anvil",               # gateway/testing/anvil.py
    "Postgres": "postgres",         # gateway/testing/postgres.py
    "sync_playwright": "browser",   # Playwright drives /usr/bin/chromium
    "async_playwright": "browser",
    "ArchiveProcess": "kill",       # gateway/testing/upstream.py: `traceseal archive run` child
    "subprocess": "kill",           # any child process: gateway, archive, CLI, node, ...
    "killpg": "kill",
    "fork": "kill",
}
# Followed into: code defined in these directories (test kits, bench scenarios, test support).
_FOLLOW = tuple(str(ROOT / d) + os.sep for d in ("tests", "bench", "gateway/testing"))
# Binaries that must not start in a `--fast` run (basename of argv[0], or anywhere in argv for
# Playwright's node driver).
_SERVERS = {"mosquitto": "broker", "anvil": "anvil", "postgres": "postgres", "initdb": "postgres",
            "pg_ctl": "postgres", "chromium": "browser", "chromium-browser": "browser",
            "playwright": "browser"}


def _code_of(obj: Any) -> list[types.CodeType]:
    """The code objects of a function, method, property or class (all its methods)."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        return [c for f in (obj.fget, obj.fset) if f is not None for c in _code_of(f)]
    if inspect.isclass(obj):
        return [c for v in vars(obj).values() for c in _code_of(v)]
    obj = inspect.unwrap(obj) if callable(obj) else obj
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", None)  # @given wraps the test
    if inner is not None:
        obj = inner
    code = getattr(obj, "__code__", None)
    return [code] if isinstance(code, types.CodeType) else []


def _followed(obj: Any) -> bool:
    try:
        src = inspect.getsourcefile(obj)
    except TypeError:
        return False
    return bool(src) and str(Path(src).resolve()).startswith(_FOLLOW)


def _names(code: types.CodeType) -> set[str]:
    """Global/attribute/imported names used by a code object and the code nested in it
    (lambdas, inner functions, comprehensions)."""
    out = set(code.co_names)
    for ins in dis.get_instructions(code):  # `import a.b.c` puts "a.b.c" in co_names: split it
        if ins.opname == "IMPORT_NAME":
            out.update(str(ins.argval).split("."))
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _names(c)
    return out


class _Tiers:
    """Which tier markers an object's code reaches; memoised per code object."""

    def __init__(self) -> None:
        self.memo: dict[types.CodeType, set[str]] = {}

    def of(self, obj: Any, scope: dict[str, Any], cls: type | None = None) -> set[str]:
        found: set[str] = set()
        for code in _code_of(obj):
            found |= self._code(code, getattr(obj, "__globals__", None) or scope, cls)
        return found

    def _code(self, code: types.CodeType, scope: dict[str, Any], cls: type | None) -> set[str]:
        if code in self.memo:
            return self.memo[code]
        self.memo[code] = found = set()  # cycles: a recursive helper sees "nothing yet"
        names = _names(code)
        found |= {STARTERS[n] for n in names if n in STARTERS}
        for n in names:
            for owner in (scope, vars(cls) if cls else {}):
                target = owner.get(n)
                if target is None:
                    continue
                if isinstance(target, types.ModuleType):  # `kit.helper(...)`: follow kit's names
                    if _followed(target):
                        for attr in names:
                            sub = getattr(target, attr, None)
                            if sub is not None and not isinstance(sub, types.ModuleType) and _followed(sub):
                                found |= self.of(sub, vars(target))
                elif (callable(target) or isinstance(target, (property, staticmethod, classmethod))) \
                        and _followed(target):
                    home = sys.modules.get(getattr(target, "__module__", ""), None)
                    found |= self.of(target, vars(home) if home else scope,
                                     target if inspect.isclass(target) else cls)
        return found


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fast", action="store_true",
                     help="only the pure tier: no broker, anvil, postgres, browser, child "
                          "process or fault-suite test (see tests/conftest.py)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers = _Tiers()
    faults_dir = ROOT / "tests" / "faults"
    for item in items:
        fn: Callable[..., Any] | None = getattr(item, "function", None)
        if fn is None:
            continue
        cls = getattr(item, "cls", None)
        scope = getattr(item.module, "__dict__", {}) if getattr(item, "module", None) else {}
        found = tiers.of(fn, scope, cls)
        info = getattr(item, "_fixtureinfo", None)
        for name in getattr(item, "fixturenames", ()):
            for fdef in (info.name2fixturedefs.get(name, ()) if info else ()):
                func = getattr(fdef, "func", None)
                if func is not None and _followed(func):
                    home = sys.modules.get(func.__module__)
                    found |= tiers.of(func, vars(home) if home else scope)
        if faults_dir in Path(str(item.path)).resolve().parents:
            found.add("faults")
        for m in sorted(found):
            item.add_marker(m)
    if config.getoption("fast"):
        keep = [i for i in items if not any(i.get_closest_marker(t) for t in TIERS)]
        gone = [i for i in items if i not in keep]
        if gone:
            config.hook.pytest_deselected(items=gone)
            items[:] = keep


_spawned: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("fast"):  # before test modules import: property tests size themselves by it
        os.environ["TRACESEAL_FAST"] = "1"
    if not config.getoption("fast"):
        return
    # The fast tier's promise, checked: no server or browser starts. A test that starts one
    # was not marked - add what it uses to STARTERS above.
    real_init = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *a: Any, **kw: Any) -> None:
        argv = [str(x) for x in ([args] if isinstance(args, (str, bytes, os.PathLike)) else args)]
        hits = [_SERVERS[w] for w in (Path(argv[0]).name if argv else "",) if w in _SERVERS]
        hits += [_SERVERS["playwright"] for x in argv if "playwright" in x]
        if hits:
            test = os.environ.get("PYTEST_CURRENT_TEST", "?")
            _spawned.append(f"{test}: started {argv[0]} ({hits[0]})")
            raise RuntimeError(f"--fast: this test starts {argv[0]} but is not marked "
                               f"`{hits[0]}`; see STARTERS in tests/conftest.py")
        real_init(self, args, *a, **kw)

    subprocess.Popen.__init__ = guarded  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _spawned:
        print("\n--fast: unmarked tests started servers:\n  " + "\n  ".join(_spawned),
              file=sys.stderr)
        session.exitstatus = 1
