"""Model weights against their manifest: every file's sha256 (streamed, so a 14 GB shard needs a few MiB of
memory) and every component's parameter count, read from the safetensors headers without loading a tensor.

The manifest (``manifest.json``, written when the artifacts are published)::

    {"components": {"vision_encoder": {"parameters": 300000000,
                                       "files": {"model.safetensors": {"sha256": "...", "bytes": 1200000000}}}}}

Paths are relative to the component's directory under the artifacts root. Nothing in the manifest may be missing
or altered, and no file may sit beside them unlisted.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

CHUNK_BYTES = 4 * 2**20


class ManifestError(ValueError):
    """A manifest that cannot be used."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def safetensors_parameters(path: Path) -> int:
    """The number of parameters in a safetensors file, from its JSON header (8-byte little-endian length first)."""
    with path.open("rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
        header = json.loads(stream.read(length))
    total = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dimension in tensor["shape"]:
            count *= dimension
        total += count
    return total


def component_files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def write_manifest(artifacts: Path, components: list[str]) -> dict:
    """The manifest of the artifacts as they are now (the publishing side of ``verify``)."""
    manifest: dict = {"components": {}}
    for component in components:
        directory = artifacts / component
        files = component_files(directory)
        manifest["components"][component] = {
            "parameters": sum(safetensors_parameters(directory / f) for f in files if f.endswith(".safetensors")),
            "files": {f: {"sha256": sha256_of(directory / f), "bytes": (directory / f).stat().st_size}
                      for f in files},
        }
    return manifest


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"manifest {path}: cannot read: {exc}") from None
    components = manifest.get("components") if isinstance(manifest, dict) else None
    if not isinstance(components, dict) or not components:
        raise ManifestError(f"manifest {path}: 'components' must map each component to its files")
    for name, entry in components.items():
        if not isinstance(entry.get("parameters"), int) or not isinstance(entry.get("files"), dict):
            raise ManifestError(f"manifest {path}: components.{name} needs 'parameters' (int) and 'files' (map)")
        for file, expected in entry["files"].items():
            if not isinstance(expected, dict) or len(str(expected.get("sha256", ""))) != 64:
                raise ManifestError(f"manifest {path}: components.{name}.files.{file} needs a 64-digit sha256")
    return manifest


def verify_component(directory: Path, expected: dict) -> dict:
    """One component's files and parameter count against its manifest entry."""
    present = set(component_files(directory)) if directory.is_dir() else set()
    listed = set(expected["files"])
    missing, extra = sorted(listed - present), sorted(present - listed)
    altered = sorted(f for f in listed & present if sha256_of(directory / f) != expected["files"][f]["sha256"])
    parameters = sum(safetensors_parameters(directory / f) for f in present if f.endswith(".safetensors"))
    return {
        "parameters": parameters,
        "expected_parameters": expected["parameters"],
        "parameters_match": parameters == expected["parameters"],
        "files_checked": len(listed & present),
        "missing": missing,
        "extra": extra,
        "altered": altered,
    }


def verify(artifacts: Path, manifest_path: Path) -> dict:
    """The ``verify-weights`` result: per component, and ``mismatched_files`` over all of them."""
    manifest = read_manifest(manifest_path)
    result: dict = {"kind": "verify-weights", "artifacts": str(artifacts), "manifest": str(manifest_path)}
    mismatched = []
    for name, expected in manifest["components"].items():
        component = verify_component(Path(artifacts) / name, expected)
        result[name] = component
        mismatched += [f"{name}/{f}" for key in ("missing", "extra", "altered") for f in component[key]]
    result["mismatched_files"] = len(mismatched)
    result["mismatches"] = mismatched
    result["passed"] = not mismatched and all(result[name]["parameters_match"] for name in manifest["components"])
    return result
