"""The labelled corpus (tests/corpus/aws) must have 100% recall; the benign corpus (tests/corpus/benign)
no false positive. See tests/corpus/README.md for the labelling rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aws_masker.engine import Masker
from aws_masker.restore import restore_text

CORPUS = Path(__file__).parent / "corpus"
LABELLED = sorted((CORPUS / "aws").glob("*.labels.yaml"))
BENIGN = sorted((CORPUS / "benign").glob("*"))


def _sample(label_file: Path) -> Path:
    return label_file.with_name(label_file.name.removesuffix(".labels.yaml"))


def test_corpus_is_substantial() -> None:
    assert len(LABELLED) >= 30
    assert len(BENIGN) >= 20
    labels = sum(len(yaml.safe_load(f.read_text())) for f in LABELLED)
    assert labels >= 400


@pytest.mark.parametrize("label_file", LABELLED, ids=lambda p: _sample(p).name)
def test_labelled_sample_full_recall(label_file: Path, masker: Masker) -> None:
    text = _sample(label_file).read_text(encoding="utf-8")
    labels = yaml.safe_load(label_file.read_text(encoding="utf-8"))
    masked, result = masker.mask_text(text)
    survivors = [label["category"] for label in labels if label["value"] in masked]
    # Report categories only: the values are identifiers and stay out of test output.
    assert not survivors, f"{len(survivors)} labelled identifiers survived, categories: {survivors}"
    assert restore_text(masked, result.tokens)[0] == text


@pytest.mark.parametrize("path", BENIGN, ids=lambda p: p.name)
def test_benign_sample_untouched(path: Path, masker: Masker) -> None:
    text = path.read_text(encoding="utf-8")
    hits = [(f.rule.name, f.value) for f in masker.find(text) if f.mask]
    assert hits == []
    assert masker.mask_text(text)[0] == text


@pytest.mark.parametrize("label_file", LABELLED, ids=lambda p: _sample(p).name)
def test_a_masked_sample_has_nothing_left_to_mask(label_file: Path, masker: Masker) -> None:
    """Masking is idempotent on real output: no rule takes a token (or what is left around one) for
    an identifier, so the stub's scan of what reached it counts nothing."""
    masked, _ = masker.mask_text(_sample(label_file).read_text(encoding="utf-8"))
    assert [f.rule.name for f in masker.find(masked) if f.mask] == []
