"""`facedb models`: list the registry and the models in use, download or import into the
cache, re-verify cached files, rewrite a dynamic-int8 recognizer as a batchable float32 graph."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facedb.config import ConfigError, Settings, load_settings
from facedb.models.families import FAMILIES
from facedb.models.graphs import cached_rewrites, find_rewrite, parse_graph
from facedb.models.onnx_model import quantizes_per_batch
from facedb.models.optimize import GraphRewriteError, optimize_model
from facedb.models.registry import REGISTRY, RegistryEntry, lookup
from facedb.models.spec import ModelSpecError, parse_local_spec
from facedb.models.store import (
    ModelUnavailableError,
    cached_path,
    download_models,
    file_digest,
    find_local,
    import_models,
    is_valid,
    model_dir,
    model_dirs,
)

# What `models list` says about each registry model, in the order of the legend line.
STATUS_LEGEND = (
    ("OK", "in the cache, SHA-256 verified"),
    ("local", "not in the cache, but a file with its SHA-256 is in a FACEDB_MODEL_DIR directory"),
    ("BAD", "the cached file fails its SHA-256 check (replaced on next use)"),
    ("missing", "not on this machine: downloaded on first use (`facedb models download`)"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    parser = subparsers.add_parser("models", help="the model registry and cache")
    commands = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    list_parser = commands.add_parser(
        "list", help="every registry model, where it is, and the models the settings use"
    )
    list_parser.add_argument("--json", action="store_true", help="machine-readable output")
    list_parser.add_argument(
        "--config", help="JSON settings file whose models to show as in use (as for serve)"
    )
    list_parser.set_defaults(handler=run_list)

    import_parser = commands.add_parser(
        "import", help="copy the registry models found in DIR (by SHA-256) into the cache"
    )
    import_parser.add_argument("directory", metavar="DIR", help="a directory of .onnx files")
    import_parser.set_defaults(handler=run_import)

    download = commands.add_parser("download", help="fetch models into the cache")
    download.add_argument("names", nargs="*", metavar="NAME", help="registry names")
    download.add_argument("--all", action="store_true", help="every registry model")
    download.add_argument("--workers", type=int, default=4, help="parallel downloads")
    download.set_defaults(handler=run_download)

    verify = commands.add_parser(
        "verify",
        help="re-hash every model file; exit 1 when one is damaged or a model in use "
        "(or named) is missing",
    )
    verify.add_argument(
        "names", nargs="*", metavar="NAME", help="check these registry models, not those in use"
    )
    verify.add_argument("--config", help="JSON settings file whose models are in use")
    verify.set_defaults(handler=run_verify)

    optimize = commands.add_parser(
        "optimize",
        help="dynamic-int8 graph -> float32 graph with the same (dequantized) weights",
        description="Write DST: SRC's ConvInteger / MatMulInteger nodes as float Conv / MatMul "
        "with the exact dequantized weights, so faces can be embedded in batches.",
    )
    optimize.add_argument("source", type=Path, metavar="SRC", help="dynamic-int8 .onnx file")
    optimize.add_argument("destination", type=Path, metavar="DST", help="float32 .onnx to write")
    optimize.set_defaults(handler=run_optimize)


def _cache_state(entry: RegistryEntry, *, rehash: bool) -> str:
    """OK (verified), BAD (present, wrong SHA-256) or missing."""
    path = cached_path(entry)
    if not path.is_file():
        return "missing"
    return "OK" if is_valid(entry, path, rehash=rehash) else "BAD"


def _roles(settings: Settings | None) -> dict[str, list[str]]:
    """Model spec → the settings that name it (detector, recognizer, liveness, quality)."""
    if settings is None:
        return {}
    named = [("detector", settings.detector), ("recognizer", settings.recognizer)]
    named += [("liveness", spec) for spec in settings.liveness.split(";") if spec.strip()]
    if settings.quality_model:
        named.append(("quality", settings.quality_model))
    roles: dict[str, list[str]] = {}
    for role, spec in named:
        roles.setdefault(spec.strip(), []).append(role)
    return roles


def _describe(entry: RegistryEntry, in_use: list[str]) -> dict[str, Any]:
    cache = _cache_state(entry, rehash=False)
    path = cached_path(entry)
    if cache != "OK":
        path = find_local(entry) or path
    status = "local" if cache != "OK" and path != cached_path(entry) else cache
    return {
        "name": entry.name,
        "family": entry.family,
        "variant": entry.variant,
        "task": entry.task,
        "embedding_size": entry.embedding_size,
        "options": entry.options,
        "license": entry.license,
        "url": entry.url,
        "sha256": entry.sha256,
        "path": str(path),
        "size_bytes": path.stat().st_size if path.is_file() else None,
        "cache": cache,
        "status": status,
        "in_use": in_use,
    }


def _describe_local_file(spec_text: str, in_use: list[str], graph: str) -> dict[str, Any]:
    """A `FAMILY:PATH` model the settings name: its file, digest and registry twin if any."""
    row: dict[str, Any] = {"name": spec_text, "in_use": in_use, "status": "local file"}
    try:
        spec = parse_local_spec(spec_text)
    except ModelSpecError as exc:
        return {**row, "status": "unusable", "error": str(exc)}
    if spec is None:  # a registry name that is not in the registry
        return {**row, "status": "unusable", "error": f"unknown model {spec_text!r}"}
    try:
        digest = file_digest(spec.path)
    except OSError as exc:
        return {**row, "status": "unusable", "error": f"cannot read {spec.path}: {exc}"}
    twin = next((e.name for e in REGISTRY.values() if e.sha256 == digest), None)
    described = {
        **row,
        "family": spec.family,
        "task": spec.task,
        "path": str(spec.path),
        "size_bytes": spec.path.stat().st_size,
        "sha256": digest,
        "registry_twin": twin,
    }
    if "recognizer" in in_use and quantizes_per_batch(spec.path):
        described["runs_as"] = _runs_as(digest, graph)
    return described


def _runs_as(source_sha256: str, graph: str) -> dict[str, Any]:
    """What a dynamic-int8 recognizer runs as: itself, or its float32 rewrite (None: not
    written yet, the first load writes it)."""
    if graph == "int8":
        return {"graph": "int8", "path": None, "sha256": source_sha256}
    rewrite = find_rewrite(source_sha256)
    return {
        "graph": "float32",
        "path": None if rewrite is None else str(rewrite),
        "sha256": None if rewrite is None else file_digest(rewrite),
    }


def _size_text(row: dict[str, Any]) -> str:
    if row.get("size_bytes") is None:
        return "-"
    return f"{row['size_bytes'] / 1e6:.1f} MB"


def _settings(config: str | None) -> tuple[Settings | None, str | None]:
    try:
        return load_settings(config), None
    except (ConfigError, ValueError, OSError) as exc:
        return None, str(exc)


@dataclass(frozen=True)
class InUse:
    """The models the settings name: registry name → roles, and every other spec described."""

    registry: dict[str, list[str]]
    others: list[dict[str, Any]]


def _graph(settings: Settings | None) -> str:
    try:
        return parse_graph(settings.recognizer_graph if settings else None)
    except ModelSpecError:
        return "int8"  # the server refuses an unknown graph; shown as the file itself


def _in_use(settings: Settings | None) -> InUse:
    registry: dict[str, list[str]] = {}
    others: list[dict[str, Any]] = []
    for spec, used in _roles(settings).items():
        if _is_local_file_spec(spec):
            others.append(_describe_local_file(spec, used, _graph(settings)))
            continue
        try:
            registry.setdefault(lookup(spec.partition("?")[0]).name, []).extend(used)
        except ModelSpecError as exc:
            others.append({"name": spec, "in_use": used, "status": "unusable", "error": str(exc)})
    return InUse(registry, others)


def _settings_or_exit(config: str | None) -> Settings | int | None:
    """The settings; exit code 2 when a named config file cannot be read; None (with a
    note) when only the environment is bad, since the registry can still be shown."""
    settings, problem = _settings(config)
    if problem is not None and config:
        print(f"error: cannot read the settings: {problem}", file=sys.stderr)
        return 2
    if problem is not None:
        print(f"note: models in use unknown, the settings are invalid: {problem}", file=sys.stderr)
    return settings


def run_list(args: argparse.Namespace) -> int:
    settings = _settings_or_exit(args.config)
    if isinstance(settings, int):
        return settings
    in_use = _in_use(settings)
    rows = [_describe(REGISTRY[name], in_use.registry.get(name, [])) for name in sorted(REGISTRY)]
    if args.json:
        print(json.dumps(rows + in_use.others, indent=2))
        return 0
    _print_table(rows, in_use.others)
    return 0


def _is_local_file_spec(spec: str) -> bool:
    family, sep, _ = spec.partition(":")
    return bool(sep) and family.lower() in FAMILIES


def _print_table(rows: list[dict[str, Any]], files: list[dict[str, Any]]) -> None:
    print(f"model directories: {', '.join(str(d) for d in model_dirs())} (cache: {model_dir()})")
    print(f"{'NAME':<26} {'FAMILY':<11} {'TASK':<9} {'DIM':>4} {'SIZE':>9}  STATUS")
    for row in rows:
        dim = row["embedding_size"] or "-"
        where = f"  {row['path']}" if row["status"] == "local" else ""
        used = f"  [in use: {', '.join(row['in_use'])}]" if row["in_use"] else ""
        print(
            f"{row['name']:<26} {row['family']:<11} {row['task']:<9} {dim:>4} "
            f"{_size_text(row):>9}  {row['status']}{where}{used}"
        )
    print("status: " + "; ".join(f"{name} = {meaning}" for name, meaning in STATUS_LEGEND))
    rewrites = cached_rewrites()
    if rewrites:
        print("float32 rewrites of dynamic-int8 recognizers (facedb.models.graphs):")
    for path, source in rewrites:
        print(f"  {path}  of SHA-256 {source[:12]}  SHA-256 {file_digest(path)[:12]}")
    if files:
        print("models in use outside the registry:")
    for row in files:
        roles = ", ".join(row["in_use"])
        if row["status"] == "unusable":
            print(f"  {roles}: {row['name']}  UNUSABLE: {row['error']}")
            continue
        twin = (
            f"same file as {row['registry_twin']}"
            if row["registry_twin"]
            else "not in the registry"
        )
        print(
            f"  {roles}: {row['family']} {row['path']}  {_size_text(row)}  "
            f"SHA-256 {row['sha256'][:12]}  ({twin})"
        )
        runs_as = row.get("runs_as")
        if runs_as and runs_as["graph"] == "float32":
            where = runs_as["path"] or "not written yet: the first load writes it to the cache"
            sha = f"  SHA-256 {runs_as['sha256'][:12]}" if runs_as["sha256"] else ""
            print(f"    runs as its float32 rewrite: {where}{sha}")
        elif runs_as:
            print("    runs as given: int8, one face at a time (recognizer_graph int8)")


def _selected(args: argparse.Namespace) -> list[RegistryEntry]:
    if args.all:
        return [REGISTRY[name] for name in sorted(REGISTRY)]
    if not args.names:
        raise ModelSpecError("name at least one model, or use --all")
    return [lookup(name) for name in args.names]


def run_download(args: argparse.Namespace) -> int:
    try:
        entries = _selected(args)
        paths = download_models(entries, workers=args.workers)
    except (ModelSpecError, ModelUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for entry, path in zip(entries, paths, strict=True):
        print(f"{entry.name}: {path}")
    return 0


def _verified_state(entry: RegistryEntry) -> str:
    """Like the list's status, with every file hashed again (remembered digests ignored)."""
    cache = _cache_state(entry, rehash=True)
    if cache != "missing":
        return cache
    local = find_local(entry)
    return "local" if local and file_digest(local, rehash=True) == entry.sha256 else "missing"


def run_verify(args: argparse.Namespace) -> int:
    """Re-hash the registry's files; 1 when one is BAD or a model in use (or named) is
    missing, so a script can tell whether the server will find its models."""
    settings = _settings_or_exit(args.config)
    if isinstance(settings, int):
        return settings
    try:
        named = {lookup(name).name for name in args.names}
    except ModelSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    in_use = InUse({}, []) if named else _in_use(settings)
    problems: list[str] = []
    print(f"model cache: {model_dir()}")
    for name in sorted(named or REGISTRY):
        state = _verified_state(REGISTRY[name])
        roles = in_use.registry.get(name, [])
        print(f"{name:<26} {state}" + (f"  [in use: {', '.join(roles)}]" if roles else ""))
        if state == "BAD" or (state == "missing" and (roles or named)):
            problems.append(f"{name} is {state}" + (f" ({', '.join(roles)})" if roles else ""))
    for row in in_use.others:
        used = ", ".join(row["in_use"])
        if row["status"] == "unusable":
            print(f"{used}: {row['name']}  missing: {row['error']}")
            problems.append(f"{row['name']} is missing ({used})")
        else:
            print(f"{used}: {row['path']}  present (a local file)")
    if problems:
        print(
            f"error: {'; '.join(problems)}: `facedb models download NAME`, or put the file in "
            "a FACEDB_MODEL_DIR directory",
            file=sys.stderr,
        )
        return 1
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Copy registry models found by SHA-256 in DIR into the cache; 1 when none was found."""
    source = Path(args.directory).expanduser()
    try:
        imported = import_models(source)
    except OSError as exc:  # not a directory, unreadable, or the cache is not writable
        print(f"error: cannot import from {source}: {exc}", file=sys.stderr)
        return 2
    for item in imported:
        action = "copied to" if item.copied else "already in the cache as"
        print(f"{item.entry.name}: {item.source} {action} {item.destination}")
    if not imported:
        print(f"no registry model in {source} (files are matched by SHA-256)")
        return 1
    print(f"{len(imported)} model(s) in the cache {model_dir()}")
    return 0


def run_optimize(args: argparse.Namespace) -> int:
    try:
        report = optimize_model(args.source, args.destination)
    except (GraphRewriteError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{report.destination}: {report.rewritten} integer nodes rewritten as float32, "
        f"{report.nodes_before} -> {report.nodes_after} nodes"
    )
    return 0
