"""verify-weights: streamed sha256 and safetensors parameter counts against the manifest (no torch needed)."""

from __future__ import annotations

import json
import struct

import pytest
from sap_llm_validator.weights import ManifestError, read_manifest, safetensors_parameters, verify, write_manifest


def _safetensors(path, shapes: dict[str, list[int]]) -> None:
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4
        for dimension in shape:
            size *= dimension
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps({"__metadata__": {"format": "pt"}, **header}).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(offset))


@pytest.fixture
def artifacts(tmp_path):
    root = tmp_path / "model"
    for component, shapes in {"vision_encoder": {"w": [30, 10], "b": [10]},
                              "language_decoder": {"w": [7, 100]}}.items():
        (root / component).mkdir(parents=True)
        _safetensors(root / component / "model.safetensors", shapes)
        (root / component / "config.json").write_text(json.dumps({"component": component}))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(write_manifest(root, ["vision_encoder", "language_decoder"])))
    return root, manifest


def test_parameters_come_from_the_safetensors_header(artifacts):
    root, _ = artifacts
    assert safetensors_parameters(root / "vision_encoder" / "model.safetensors") == 310
    assert safetensors_parameters(root / "language_decoder" / "model.safetensors") == 700


def test_untouched_artifacts_pass(artifacts):
    result = verify(*artifacts)
    assert result["passed"] is True and result["mismatched_files"] == 0
    assert result["vision_encoder"]["parameters"] == 310 and result["vision_encoder"]["files_checked"] == 2


def test_altered_missing_and_extra_files_fail_by_name(artifacts):
    root, manifest = artifacts
    weights = root / "vision_encoder" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    (root / "language_decoder" / "config.json").unlink()
    (root / "language_decoder" / "notes.txt").write_text("unlisted")
    result = verify(root, manifest)
    assert result["passed"] is False and result["mismatched_files"] == 3
    assert result["vision_encoder"]["altered"] == ["model.safetensors"]
    assert result["language_decoder"]["missing"] == ["config.json"]
    assert result["language_decoder"]["extra"] == ["notes.txt"]


def test_parameter_count_off_the_manifest_fails(artifacts):
    root, manifest = artifacts
    data = json.loads(manifest.read_text())
    data["components"]["language_decoder"]["parameters"] = 7_000_000_000
    manifest.write_text(json.dumps(data))
    result = verify(root, manifest)
    assert result["passed"] is False and result["language_decoder"]["parameters_match"] is False


def test_a_missing_component_directory_lists_every_file_missing(artifacts):
    root, manifest = artifacts
    for path in (root / "language_decoder").iterdir():
        path.unlink()
    (root / "language_decoder").rmdir()
    result = verify(root, manifest)
    assert sorted(result["language_decoder"]["missing"]) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "cannot read"),
    ("{}", "'components' must map"),
    ('{"components": {"x": {"parameters": 1, "files": {"a": {"sha256": "short"}}}}}', "components.x.files.a"),
])
def test_bad_manifests_name_the_problem(tmp_path, content, message):
    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(path)
