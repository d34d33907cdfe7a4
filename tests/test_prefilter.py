"""The Hyperscan prefilter and the scanner built on it (plugin/aws_masker/prefilter.py).

The contract the scanner's ``anchors`` mode rests on: wherever a rule's regex matches, the prefilter
reports that position together with that rule. It is checked here against Python's ``re`` at every
position of every corpus file and catalogue sample; tests/test_properties.py checks it on generated
text. Then the scanner itself must find exactly what the plain word-by-word scan finds.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from contract import assert_contract, every_hit, rule_starts, windowed

from aws_masker import prefilter
from aws_masker.patterns import RULES, Rule, words
from aws_masker.scanner import DEFAULT_MODE, MODES, Scanner, escapes_blanked

CORPUS = Path(__file__).parent / "corpus"
TEXTS = sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.name.endswith(".yaml"))
ENABLED = frozenset({r.category for r in RULES} | {"rds", "private_ip", "s3"})
ANCHORS = Scanner(mode="anchors")
PLAIN = Scanner(mode="plain")
# tiny windows put a window boundary next to (nearly) every anchor, host run and identifier
SMALL_WINDOWS = [windowed(1), windowed(7), windowed(64)]


def test_default_mode_is_the_prefilter_here() -> None:
    assert prefilter.AVAILABLE, "hyperscan is a dependency; the suite runs with it"
    assert DEFAULT_MODE == "anchors"


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_contract_on_every_corpus_position(path: Path) -> None:
    assert_contract(path.read_text(encoding="utf-8"), [ANCHORS])


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_contract_on_catalogue_samples(rule: Rule) -> None:
    for text, _value in rule.must_match:
        assert rule_starts(escapes_blanked(text)), f"{rule.name}: sample does not match its own rule"
        assert_contract(text, [ANCHORS])
    for text in rule.must_not_match:
        assert_contract(text, [ANCHORS])


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_every_mode_finds_what_the_plain_scan_finds(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = PLAIN.scan(text, ENABLED, frozenset())
    assert ANCHORS.scan(text, ENABLED, frozenset()) == expected
    assert Scanner(mode="words").scan(text, ENABLED, frozenset()) == expected


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_small_windows_keep_the_contract_and_the_findings(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert_contract(text, SMALL_WINDOWS)
    expected = PLAIN.scan(text, ENABLED, frozenset())
    for scanner in SMALL_WINDOWS:
        assert scanner.scan(text, ENABLED, frozenset()) == expected


def test_a_long_text_is_scanned_in_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MB text is never copied whole for Hyperscan: each scan reads one window and the read-on.
    The hits are those of one scan over the whole text."""
    text = "".join(path.read_text(encoding="utf-8") for path in TEXTS)
    text = text * (1_000_000 // len(text) + 1)
    whole = every_hit(windowed(len(text)), text)
    scanner = windowed(prefilter.WINDOW)
    pf = scanner._prefilter
    scanned: list[int] = []
    database = pf._database
    pf._scratch()  # (made for the real database)

    class Recording:
        def scan(self, data: bytes, *args: object) -> None:
            scanned.append(len(data))
            database.scan(data, *args)

    monkeypatch.setattr(pf, "_database", Recording())
    assert every_hit(scanner, text) == whole
    assert len(scanned) > len(text) // prefilter.WINDOW // 2
    assert max(scanned) < 2 * prefilter.WINDOW


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 character"):
        prefilter.Prefilter(RULES, window=0)


def test_an_anchor_of_unbounded_width_is_refused() -> None:
    assert prefilter.max_width("(?:db|cluster)-[A-Z0-9]{26}") == 34
    with pytest.raises(ValueError, match="no bounded width"):
        prefilter.max_width("i-[0-9a-f]+")


@pytest.mark.parametrize(
    "text",
    [
        # offsets survive characters outside ASCII, in the BMP and beyond
        "résumé 日本 i-0123456789abcdef0 🚀 10.0.1.5 façade arn:aws:iam::123456789012:role/x",
        "\ud800 lone surrogate, then vpc-0a1b2c3d",
        # hostnames: at the start of the text, after "_" (no match), several in one run of host
        # characters, and anchors that sit inside one another
        "prod-db.c9akciq32xyz.us-east-1.rds.amazonaws.com is up",
        "x_prod-db.c9akciq32xyz.us-east-1.rds.amazonaws.com and a.ec2.internal.b.ec2.internal",
        "my-bucket.s3.amazonaws.com.cn/x, ip-10-0-0-1.ec2.internal:22, d111.cloudfront.net.",
        "a.amazonaws.com" * 50,
        # identifiers straight after each other and inside JSON escapes
        '"i-0123456789abcdef0\\ni-0123456789abcdef1\\u0027sg-12345678"',
        "::ffff:10.0.1.23 2001:db8::1 10:30:45 1.2.3.4.5 123456789012 1234-5678-9012",
    ],
)
def test_edge_cases(text: str) -> None:
    assert_contract(text, [ANCHORS, *SMALL_WINDOWS])
    expected = PLAIN.scan(text, ENABLED, frozenset())
    for scanner in [ANCHORS, *SMALL_WINDOWS]:
        assert scanner.scan(text, ENABLED, frozenset()) == expected


def test_host_run_starts() -> None:
    def hit(offset: int, pattern: int) -> int:
        return offset << prefilter.SHIFT | pattern

    text = "x a-b.c.amazonaws.com_q d.e.amazonaws.com"
    first = text.index(".amazonaws")
    second = text.index(".amazonaws", first + 1)
    inner = text.index(".c.")
    assert sorted(prefilter.host_run_starts(text, [hit(second, 7), hit(first, 7), hit(inner, 8)])) == [
        hit(2, 7),
        hit(2, 8),
        hit(text.index("d.e"), 7),
    ]
    assert prefilter.host_run_starts("a.b.ec2.internal", [hit(3, 1)]) == [hit(0, 1)]


@pytest.mark.parametrize(
    "text",
    [
        "x " + "a.amazonaws.com." * 20_000,
        "_" + "a.amazonaws.com." * 20_000,  # the hostname rules fail at the run's start
        ("node1.compute.internal" + "x") * 5_000,
        "x.internal." * 20_000,
    ],
    ids=["run", "run-after-underscore", "runs-glued", "internal"],
)
def test_long_host_runs_stay_linear(text: str) -> None:
    """A run of host characters with many anchors in it gives one hit per host pattern at its start,
    not one per anchor: else the scanner would try the hostname rules from the run's start once per
    anchor, each try as long as the run (quadratic; found by fuzzing: 128 KB took 29 s)."""
    pf = ANCHORS._prefilter
    host_hits = [
        hit for hit in every_hit(ANCHORS, text) if RULES[pf.rule_of[hit & prefilter.MASK]].host_anchors
    ]
    runs = {hit >> prefilter.SHIFT for hit in host_hits}
    assert len(host_hits) == len(set(host_hits))  # each (run start, host pattern) once
    assert len(runs) <= text.count("x") + 1
    assert ANCHORS.scan(text, ENABLED, frozenset()) == PLAIN.scan(text, ENABLED, frozenset())


def test_threads_scan_concurrently() -> None:
    """Each thread gets its own Hyperscan scratch space; sharing one fails with "scratch in use"."""
    text = (CORPUS / "aws").joinpath(sorted(p.name for p in (CORPUS / "aws").iterdir())[0]).read_text()
    expected = ANCHORS.scan(text, ENABLED, frozenset())
    results: list[object] = []

    def work() -> None:
        for _ in range(30):
            results.append(ANCHORS.scan(text, ENABLED, frozenset()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 120
    assert all(r == expected for r in results)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="one of anchors, words, plain"):
        Scanner(mode="fast")
    assert MODES == ("anchors", "words", "plain")


def test_without_hyperscan_the_prefilter_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefilter, "hyperscan", None)
    with pytest.raises(RuntimeError, match="hyperscan"):
        prefilter.Prefilter(RULES)


def test_a_rule_without_anchors_is_refused() -> None:
    with pytest.raises(ValueError, match="no prefilter anchors"):
        Rule(
            name="x",
            category="ec2",
            kind="EC2",
            regex="x-[0-9]+",
            description="",
            must_match=(),
            must_not_match=(),
        )
    lead = words(["Widget"])  # a rule that begins with words(...) gets those words as anchors
    rule = Rule(
        name="w",
        category="ec2",
        kind="EC2",
        regex=lead + "-[0-9]+",
        description="",
        must_match=(),
        must_not_match=(),
    )
    assert rule.anchors == ("Widget",)


def test_fallback_scanner_is_announced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aws_masker import engine

    monkeypatch.setattr(engine, "Scanner", lambda: Scanner(mode="words"))
    engine.default_scanner.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="aws_masker.engine"):
            assert engine.default_scanner().mode == "words"
        assert "hyperscan package is not available" in caplog.text
    finally:
        engine.default_scanner.cache_clear()


def test_first_chars_reads_what_a_pattern_begins_with() -> None:
    # the words scanner tries, after a rejected match, only later rules that can begin with the
    # character there: a set too small would skip a rule that matches
    assert prefilter.first_chars("ab|[c-e]x|(?:f|g)") == frozenset("acdefg")
    assert prefilter.first_chars("(?P<v>[0-9])") == frozenset("0123456789")
    for unclear in (r"\dx", "[^a]", "(?=a)a", "(?i)a", ".x", "\u00e9", "", "a|"):
        assert prefilter.first_chars(unclear) is None, unclear


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_rule_match_begins_with_one_of_its_first_chars(rule: Rule) -> None:
    import re

    chars = prefilter.first_chars(rule.regex)
    pattern = re.compile(rule.regex, re.S)
    for text, _value in rule.must_match:
        for start in range(len(text)):
            if pattern.match(text, start):
                assert chars is None or text[start] in chars, (rule.name, text[start])
