"""The package layering of docs/architecture.md, enforced over the import graph.

Every ``import`` in ``gateway/`` and ``ledger_client/`` counts: module level, inside a
function, in a class body, under ``if TYPE_CHECKING`` or ``try``. A lazy import hides a
dependency from the interpreter, not from this test. Importing ``a.b.c`` also runs
``a/__init__`` and ``a/b/__init__``; those implicit edges count for cycles, because a
package ``__init__`` that re-exports turns an innocent import into an import of its
whole package.

Rules:
1. a module imports only its own layer or lower ones (``LAYERS``, low to high); the
   archive (a sibling product) only what ``SIBLINGS`` lists; adapters never the transports;
   the library never imports ``gateway.testing`` (test support may import anything);
2. ``ledger_client`` (what auditors install) imports nothing from ``gateway``;
3. the graph, implicit ``__init__`` edges included, has no cycle;
4. no ``_private`` module or name is imported across top-level packages;
5. SQL runs only where its database is owned: ``.execute(``, ``executemany(``,
   ``executescript(``, ``sqlite3.connect`` and ``psycopg.connect`` appear only under
   ``gateway/journal/`` (the journal), ``gateway/archive/store*`` (the archive's store) and
   ``ledger_client/local.py`` (the local ledger's file); and nothing outside
   ``gateway/journal/`` touches a ``.db`` attribute (a journal's connection; the archive's
   store keeps its own behind its methods), nor ``getattr(x, "db")``.
6. no module over ``MAX_MODULE_LINES`` lines, no function over ``MAX_FUNCTION_LINES`` (nested
   functions and classes count toward the function around them), unless the module docstring
   says why on a line ``Size: <function name, dotted, or "module">: <reason>``; each
   exemption honoured is printed, and one that is no longer needed fails. ``KNOWN_OVERSIZE``
   lists what is still being split, each entry checked to be still oversize.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "ledger_client")

LAYERS: list[tuple[str, ...]] = [  # low -> high; a module may import its own layer or lower
    ("ledger_client",),  # the trust package: verification, keys, ledgers
    ("gateway.core",),  # errors, clock, observation, config table reader, typed settings
    ("gateway.rules",),  # pure domain: cold chain, inventory, custody, station profile
    ("gateway.transports",),  # move bytes (MQTT, serial, 1-Wire)
    ("gateway.adapters",),  # parse bytes (pure)
    ("gateway.journal",),  # the durable SQLite journal (what ingest writes into)
    ("gateway.ingest",),  # admit, seal, pipeline: parsed observations into journaled records
    ("gateway.chain",),  # blocks, anchors, ledgers, key rotation, retention, export
    ("gateway.station",),  # the rules applied at runtime, GPIO panel
    ("gateway.forward",),  # upstream forwarding
    ("gateway.web",),  # dashboard and /metrics
    ("gateway.app",),  # Gateway service, config assembly, doctor
    ("gateway.cli",),  # `traceseal`
]
SIBLINGS = {  # package -> the only gateway/ledger_client packages it may import (besides itself)
    "gateway.archive": {"ledger_client", "gateway.core", "gateway.rules", "gateway.transports",
                        "gateway.journal", "gateway.chain"},
}
EXTRA_ALLOWED = {("gateway.cli", "gateway.archive")}  # `traceseal archive ...`
FORBIDDEN = {("gateway.adapters", "gateway.transports")}  # parsers do no I/O
TEST_SUPPORT = "gateway.testing"  # may import anything; nothing in the library imports it
ROOT_MODULE = "gateway"  # gateway/__init__.py: version only, imports nothing

# Exceptions to the rules above, each with its reason. Empty: keep it so.
ALLOWED_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    line: int
    names: tuple[str, ...]
    implicit: bool = False  # a parent package's __init__, run by importing below it


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _edges(mods: dict[str, Path]) -> list[Edge]:
    out: list[Edge] = []
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"

        def add(target: str, line: int, names: tuple[str, ...], src: str = mod) -> None:
            if target.split(".")[0] not in PACKAGES:
                return
            while target and target not in mods:  # `import gateway.web.app` etc.
                target = target.rpartition(".")[0]
            if target and target != src:
                out.append(Edge(src, target, line, names))

        for node in ast.walk(ast.parse(path.read_text(), str(path))):  # every scope
            if isinstance(node, ast.Import):
                for a in node.names:
                    add(a.name, node.lineno, ("",))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    parent = ".".join(base + ([node.module] if node.module else []))
                else:
                    parent = node.module or ""
                plain = []
                for a in node.names:
                    if f"{parent}.{a.name}" in mods:
                        add(f"{parent}.{a.name}", node.lineno, ("*module*",))
                    else:
                        plain.append(a.name)
                if plain:
                    add(parent, node.lineno, tuple(plain))
    implicit: list[Edge] = []
    for e in out:
        parts = e.dst.split(".")
        for i in range(1, len(parts)):
            pkg = ".".join(parts[:i])
            if pkg in mods and not e.src.startswith(pkg + ".") and pkg != e.src:
                implicit.append(Edge(e.src, pkg, e.line, ("<__init__>",), True))
    return out + implicit


MODS = _modules()
EDGES = _edges(MODS)
EXPLICIT = [e for e in EDGES if not e.implicit]


def package_of(mod: str) -> str:
    parts = mod.split(".")
    return parts[0] if parts[0] == "ledger_client" or len(parts) == 1 else ".".join(parts[:2])


LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _where(e: Edge) -> str:
    return f"{MODS[e.src].relative_to(ROOT)}:{e.line}  {e.src} -> {e.dst} {list(e.names)}"


def layering_problems() -> list[str]:
    problems = []
    for e in EXPLICIT:
        a, b = package_of(e.src), package_of(e.dst)
        if a == b or (a, b) in EXTRA_ALLOWED or (e.src, e.dst) in ALLOWED_EXCEPTIONS:
            continue
        if a == TEST_SUPPORT:
            continue
        if b == TEST_SUPPORT:
            problems.append(f"library imports test support: {_where(e)}")
        elif (a, b) in FORBIDDEN:
            problems.append(f"forbidden ({a} must not import {b}): {_where(e)}")
        elif a in SIBLINGS:
            if b not in SIBLINGS[a]:
                problems.append(f"{a} may import only {sorted(SIBLINGS[a])}: {_where(e)}")
        elif b in SIBLINGS:
            problems.append(f"only {sorted(p for p, q in EXTRA_ALLOWED if q == b)} import {b}: {_where(e)}")
        elif a not in LAYER_OF or b not in LAYER_OF:
            problems.append(f"package not in LAYERS (add it to the test and docs/architecture.md): {_where(e)}")
        elif LAYER_OF[b] > LAYER_OF[a]:
            problems.append(f"upward import (layer {LAYER_OF[a]} -> {LAYER_OF[b]}): {_where(e)}")
    return problems


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    adj: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        adj[e.src].add(e.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(MODS):
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        work = [(start, iter(sorted(adj[start])))]
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(adj[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_graph_is_read() -> None:
    """Guard against a test that passes because it saw nothing."""
    assert len(MODS) > 100 and len(EXPLICIT) > 300
    assert any(e.src == "gateway.app.service" and e.dst == "gateway.ingest.pipeline" for e in EXPLICIT)
    assert any(e.src == "gateway.ingest.pipeline" and e.dst == "gateway.adapters.registry" for e in EXPLICIT), \
        "function-level imports must be in the graph"


def test_every_package_has_a_layer() -> None:
    known = set(LAYER_OF) | set(SIBLINGS) | {TEST_SUPPORT, ROOT_MODULE}
    assert sorted({package_of(m) for m in MODS} - known) == []


def test_imports_follow_the_layers() -> None:
    assert layering_problems() == []


def test_ledger_client_imports_nothing_from_gateway() -> None:
    bad = [_where(e) for e in EXPLICIT if e.src.startswith("ledger_client") and e.dst.startswith("gateway")]
    assert bad == []


def test_no_cycles_including_package_inits() -> None:
    assert cycles(EDGES) == []


def test_no_private_names_across_packages() -> None:
    bad = []
    for e in EXPLICIT:
        if package_of(e.src) == package_of(e.dst):
            continue
        names = [n for n in e.names if _private(n)]
        if any(_private(part) for part in e.dst.split(".")):
            names.append(e.dst)
        if names:
            bad.append(f"{_where(e)}: {names}")
    assert bad == []


def test_allowed_exceptions_are_still_needed() -> None:
    live = {(e.src, e.dst) for e in EXPLICIT}
    assert sorted(set(ALLOWED_EXCEPTIONS) - live) == []


@pytest.mark.parametrize(("src", "dst", "want"), [
    ("gateway.ingest.pipeline", "gateway.app.config", "upward import"),
    ("gateway.archive.view", "gateway.station.runtime", "gateway.archive may import only"),
    ("gateway.adapters.gs1", "gateway.transports.serial", "forbidden"),
    ("gateway.web.app", "gateway.testing.dashboard", "library imports test support"),
    ("gateway.web.app", "gateway.archive.store", "import gateway.archive"),
])
def test_the_rules_catch_what_they_claim(src: str, dst: str, want: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each rule fails on the import it exists to refuse (a rule that cannot fail is no rule)."""
    monkeypatch.setattr(__import__(__name__), "EXPLICIT", [*EXPLICIT, Edge(src, dst, 1, ("x",))])
    problems = layering_problems()
    assert any(want in p and f"{src} -> {dst}" in p for p in problems), problems


def test_cycle_detection_sees_init_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    """A package __init__ that re-exports, imported from below, closes a cycle."""
    fake = [*EDGES, Edge("gateway.journal.journal", "gateway.forward.state", 1, ("x",)),
            Edge("gateway.journal.journal", "gateway.forward", 1, ("<__init__>",), True)]
    assert any("gateway.journal.journal" in c and "gateway.forward" in c for c in cycles(fake))


# -- rule 5: who may run SQL --------------------------------------------------------------------
SQL_OWNERS = ("gateway/journal/", "gateway/archive/store", "ledger_client/local.py")
DB_OWNERS = ("gateway/journal/", "gateway/archive/store")
SQL_METHODS = {"execute", "executemany", "executescript"}
CONNECTS = {("sqlite3", "connect"), ("psycopg", "connect")}


def sql_problems(sources: dict[str, str]) -> list[str]:
    """``sources``: path relative to the repo -> its text."""
    out = []
    for rel, text in sources.items():
        sql_ok, db_ok = rel.startswith(SQL_OWNERS), rel.startswith(DB_OWNERS)
        for node in ast.walk(ast.parse(text, rel)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not sql_ok:
                f = node.func
                if f.attr in SQL_METHODS:
                    out.append(f"{rel}:{node.lineno}: .{f.attr}( outside the package that owns the database")
                elif isinstance(f.value, ast.Name) and (f.value.id, f.attr) in CONNECTS:
                    out.append(f"{rel}:{node.lineno}: {f.value.id}.connect outside the package that owns the database")
            if db_ok:
                continue
            if isinstance(node, ast.Attribute) and node.attr == "db":
                out.append(f"{rel}:{node.lineno}: .db reaches into a journal's connection (ask gateway.journal)")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "hasattr") and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant) and node.args[1].value == "db"):
                out.append(f"{rel}:{node.lineno}: {node.func.id}(..., \"db\") reaches into a journal's connection")
    return out


def _library_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for p in MODS.values()
            if not str(p.relative_to(ROOT)).startswith("gateway/testing/")}


def test_sql_runs_only_where_its_database_is_owned() -> None:
    src = _library_sources()
    assert "gateway/journal/journal.py" in src and "gateway/web/queries.py" in src
    assert sql_problems(src) == []


def test_test_support_reads_the_journal_through_it_too() -> None:
    """The test kits in gateway/testing are library code other projects' tests copy."""
    src = {str(p.relative_to(ROOT)): p.read_text() for p in MODS.values()
           if str(p.relative_to(ROOT)).startswith("gateway/testing/")}
    assert sql_problems(src) == []


@pytest.mark.parametrize(("path", "code", "want"), [
    ("gateway/web/queries.py", "def f(db):\n    return db.execute('SELECT 1')\n", ".execute( outside"),
    ("gateway/chain/retention.py", "def f(tx, rows):\n    tx.executemany('INSERT', rows)\n", ".executemany( outside"),
    ("gateway/app/doctor/checks.py", "import sqlite3\nc = sqlite3.connect('x')\n", "sqlite3.connect outside"),
    ("gateway/archive/consumer.py", "import psycopg\nc = psycopg.connect('x')\n", "psycopg.connect outside"),
    ("gateway/cli/journal.py", "def f(j):\n    return j.db\n", ".db reaches into"),
    ("gateway/chain/export.py", "def f(j):\n    return getattr(j, 'db', None)\n", 'getattr(..., "db")'),
    ("ledger_client/verify/steps.py", "def f(db):\n    db.executescript('x')\n", ".executescript( outside"),
])
def test_the_sql_rule_catches_what_it_claims(path: str, code: str, want: str) -> None:
    """Planted violations fail the rule; the same code in the owning package passes."""
    problems = sql_problems({**_library_sources(), path: code})
    assert any(p.startswith(f"{path}:") and want in p for p in problems), problems
    assert sql_problems({"gateway/journal/planted.py": code}) == []
# -- rule 6: sizes ---------------------------------------------------------------------------

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
SIZE_LINE = re.compile(r"^\s*Size:\s*([\w.]+)\s*:\s*(\S.*)$", re.MULTILINE)

# Oversize today, each being split by the engineer named; the test fails once an entry is no
# longer oversize, so the list only shrinks. Keys: "path" for a module, "path::function".
KNOWN_OVERSIZE: dict[str, str] = {
}


@dataclass(frozen=True)
class Sizes:
    problems: list[str]  # over the limit, no exemption
    honoured: list[str]  # over the limit, exempted (docstring or KNOWN_OVERSIZE)
    stale: list[str]  # exempted but no longer over the limit


def _function_sizes(tree: ast.Module) -> dict[str, int]:
    """Dotted name (``Class.method``, ``outer.inner``) -> lines, for every function at any depth."""
    out: dict[str, int] = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    out[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                walk(child, name + ".")
            else:
                walk(child, prefix)
    walk(tree, "")
    return out


def size_report(paths: list[Path], known: dict[str, str]) -> Sizes:
    problems: list[str] = []
    honoured: list[str] = []
    stale: list[str] = []
    for path in paths:
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()
        text = path.read_text()
        tree = ast.parse(text, str(path))
        said = dict(SIZE_LINE.findall(ast.get_docstring(tree) or ""))
        sizes = {"module": len(text.splitlines())} | _function_sizes(tree)
        for name, n in sizes.items():
            limit = MAX_MODULE_LINES if name == "module" else MAX_FUNCTION_LINES
            key = rel if name == "module" else f"{rel}::{name}"
            why = said.get(name) or known.get(key)
            if n <= limit:
                if why is not None:
                    stale.append(f"{key}: {n} lines, within {limit}: drop its Size line / KNOWN_OVERSIZE entry")
            elif why is not None:
                honoured.append(f"{key}: {n} lines > {limit}: {why}")
            else:
                problems.append(f"{key}: {n} lines > {limit} (split it, or say why: 'Size: {name}: <reason>' "
                                "in the module docstring)")
        stale += [f"{rel}: 'Size: {name}' names nothing in the module" for name in said if name not in sizes]
    stale += [f"{k}: in KNOWN_OVERSIZE but no such module" for k in known
              if not (ROOT / k.split("::")[0]).exists()]
    return Sizes(problems, honoured, stale)


def test_modules_and_functions_stay_small() -> None:
    report = size_report(list(MODS.values()), KNOWN_OVERSIZE)
    for line in report.honoured:  # visible in the run (pytest -s / -rP), so exemptions are not forgotten
        print("size exemption:", line)
    assert report.problems == []
    assert report.stale == []


def test_the_size_rule_catches_a_planted_violation(tmp_path: Path) -> None:
    """A 401-line module with a 61-line function fails; the docstring's Size lines exempt each
    (and are reported); an exemption for something that fits is itself a failure."""
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    fn = f"def big() -> None:\n{body}\n"
    filler = "\n" * (401 - 1 - fn.count("\n"))  # 401 lines with the docstring line
    bad = tmp_path / "bad.py"
    bad.write_text('"""Planted."""\n' + fn + filler)
    report = size_report([bad], {})
    assert any("::big: 61 lines > 60" in p for p in report.problems), report
    assert any(p.endswith("bad.py: 401 lines > 400 (split it, or say why: 'Size: module: <reason>' "
                          "in the module docstring)") for p in report.problems), report
    bad.write_text('"""Planted.\n\nSize: module: one table\nSize: big: one state machine\n"""\n' + fn + filler)
    report = size_report([bad], {})
    assert report.problems == [] and len(report.honoured) == 2 and report.stale == [], report
    bad.write_text('"""Planted.\n\nSize: small: no reason\n"""\ndef small() -> None:\n    pass\n')
    assert any("small" in s for s in size_report([bad], {}).stale)


def test_known_oversize_entries_are_still_oversize() -> None:
    """So the list only shrinks: a module split without dropping its entry fails here."""
    report = size_report(list(MODS.values()), KNOWN_OVERSIZE)
    honoured = {h.split(": ")[0] for h in report.honoured}
    assert sorted(set(KNOWN_OVERSIZE) - honoured) == []
