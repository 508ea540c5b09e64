"""The command line, in-process: fake engines for the logic, the embedded models once."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ib_middleware.lab.cli import app
from ib_middleware.lab.data import load_financebench
from ib_middleware.policy import Policy
from ib_middleware.registry import register_engine
from ib_middleware.testing import FakeScorer

runner = CliRunner()

PAGE = (
    "Capital expenditure was $1,577 million in 2018. "
    "The company logo is red. Employees enjoy the cafeteria. The weather was mild. "
    "Offices are open on weekdays. The annual picnic was held in June. "
    "Revenue was $32,765 million. The board met four times."
)


def score(prompt: str, continuation: str) -> float:
    # z is likelier after a document that holds its first word: positive CXMI, and the
    # contexts are told apart for the offline estimate.
    document = prompt.split("Question:", maxsplit=1)[0]
    return -1.0 if continuation.split(maxsplit=1)[0] in document else -6.0


@pytest.fixture
def config(tmp_path):
    register_engine("cli-fake-scorer", lambda **options: FakeScorer(score))
    path = tmp_path / "stage.yaml"
    path.write_text(
        "token_budget: 10\n"
        "policy: null\n"  # a stage of fakes: the shipped policy was fitted for another
        "rungs:\n"
        "  - name: tight\n"
        "    compressor: {kind: extractive, budget_tokens: 14}\n"
        "    threshold_bits_per_token: 0.05\n"
        "estimator:\n"
        "  scorer: {engine: cli-fake-scorer, options: {}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def data(tmp_path):
    rows = [
        {"context": PAGE, "query": "What was capital expenditure?", "answer": "$1577.00"},
        {"context": PAGE, "query": "When was the picnic?", "answer": "June"},
        {"context": PAGE, "query": "What was revenue?", "answer": "$32765.00"},
        {"context": PAGE, "query": "Who is the CEO?", "answer": "Alice"},
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.parametrize("missing", ["typer", "rich"])
def test_without_the_lab_extra_the_console_script_names_it(monkeypatch, capsys, missing):
    import sys

    from ib_middleware.lab import main

    # The command line module imports typer, then rich, before anything of its own.
    monkeypatch.delitem(sys.modules, "ib_middleware.lab.cli")
    for name in [m for m in sys.modules if m == missing or m.startswith(f"{missing}.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert 'pip install "ib-middleware[lab]"' in err
    assert f"{missing} is not installed" in err


def test_the_console_script_runs_the_app(monkeypatch):
    import sys

    from ib_middleware.lab import main

    monkeypatch.setattr(sys, "argv", ["ib-middleware", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0


def test_compress_json_from_a_file(config, tmp_path):
    context = tmp_path / "page.txt"
    context.write_text(PAGE, encoding="utf-8")
    result = runner.invoke(
        app,
        ["compress", "--query", "capital expenditure?", str(context), "-c", str(config), "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert payload["decision"] == "accepted"
    assert payload["rung"] == 0
    assert payload["text"].startswith("Capital expenditure was $1,577 million")
    assert payload["bits_per_token"] > 0.05
    assert payload["input_tokens"] > payload["output_tokens"] > 0
    assert "accepted" in payload["reason"]
    [attempt] = payload["attempts"]
    assert attempt["name"] == "tight"
    assert "text" not in attempt["compression"]
    assert len(result.stdout.strip().splitlines()) == 1


def test_compress_reads_stdin_and_prints_a_summary(config):
    result = runner.invoke(
        app, ["compress", "-q", "capital expenditure?", "--config", str(config)], input=PAGE
    )
    assert result.exit_code == 0, result.output
    assert "accepted" in result.stdout
    assert "Capital expenditure was $1,577 million" in result.stdout
    assert "bits/token" in result.stdout


def test_compress_passes_short_context_through(config):
    result = runner.invoke(app, ["compress", "-q", "q", "-c", str(config), "--json"], input="Hi.")
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert payload["decision"] == "passthrough"
    assert payload["text"] == "Hi."


def test_compress_survives_non_utf8_bytes(config):
    result = runner.invoke(
        app, ["compress", "-q", "q", "-c", str(config), "--json"], input=b"caf\xe9 " * 40
    )
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["decision"] in {"accepted", "fallback"}


def test_missing_context_file_is_a_clean_error(config, tmp_path):
    missing = tmp_path / "missing.txt"
    result = runner.invoke(app, ["compress", "-q", "q", str(missing), "-c", str(config)])
    assert result.exit_code == 1
    assert "no such file" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_engine_is_a_clean_error_with_json(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[estimator.scorer]\nengine = "no-such-engine"\n', encoding="utf-8")
    result = runner.invoke(app, ["compress", "-q", "q", "-c", str(bad), "--json"], input=PAGE)
    assert result.exit_code == 1
    assert "no engine named 'no-such-engine'" in result.stderr
    payload = last_json(result.stdout)
    assert payload["error_type"] == "EngineNotFoundError"
    assert "Traceback" not in result.output


def test_invalid_config_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("token_budget: -3\n", encoding="utf-8")
    result = runner.invoke(app, ["compress", "-q", "q", "-c", str(bad)], input=PAGE)
    assert result.exit_code == 1
    assert "token_budget" in result.stderr


def test_calibrate_writes_a_policy_with_its_command(config, data, tmp_path):
    out = tmp_path / "policy.json"
    records = tmp_path / "records.jsonl"
    args = ["calibrate", "--data", str(data), "--target-fallback", "0.3", "--out", str(out)]
    result = runner.invoke(app, [*args, "-c", str(config), "--records", str(records), "--json"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    policy = Policy.load(out)
    assert payload["policy"] == policy.model_dump(mode="json")
    # The CEO case is dropped: its page does not hold the answer.
    assert payload["cases_loaded"] == 4
    assert policy.n_cases == 3
    assert policy.target_kind == "fallback"
    assert policy.estimator == "relevant_pmi"
    assert policy.scorer == "fake-scorer"
    assert policy.judge == "facts"
    assert [rung.name for rung in policy.rungs] == ["tight"]
    # 21 quantiles, times the relevance gate's candidates (None, no gate, first).
    assert len(policy.curve) % 21 == 0
    assert policy.curve[0].prune_below is None
    assert policy.folds is None  # 3 cases are too few for 5 folds: in-sample figures
    assert "too few" in payload["evaluation"]["note"]
    assert policy.reproduce == (
        f"ib-middleware calibrate --data {data} --target-fallback 0.3 --config {config} --out {out}"
    )
    lines = records.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 3  # what it was measured with, then one line a case
    assert json.loads(lines[0])["meta"]["rung_names"] == ["tight"]
    assert payload["rungs"][0]["name"] == "tight"


def test_calibrate_for_a_distortion_target_keeping_every_case(config, data):
    args = ["calibrate", "-d", str(data), "--target-distortion", "0.0", "--keep-uncontained"]
    result = runner.invoke(app, [*args, "--judge", "contains", "-c", str(config)])
    assert result.exit_code == 0, result.output
    # The CEO case is wrong on every route: distortion 0 is out of reach, and it says so.
    assert "no operating point reaches distortion" in result.stdout
    assert "not met" in result.stderr


def test_calibrate_cross_validates_and_evaluates_the_routing(config, data, tmp_path):
    out = tmp_path / "policy.json"
    args = ["calibrate", "-d", str(data), "--target-distortion", "0.2", "-c", str(config)]
    args += ["--folds", "2", "--bootstrap", "50", "--out", str(out)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    policy = Policy.load(out)
    assert policy.folds == payload["folds"] == 2
    assert policy.reproduce.endswith(f"--folds 2 --bootstrap 50 --config {config} --out {out}")
    routers = {"policy", "random", "length", "always_compress", "never_compress"}
    assert routers <= set(payload["evaluation"])
    assert payload["evaluation"]["bootstrap"] == 50
    assert policy.forwarded_fraction == payload["evaluation"]["policy"]["forwarded_fraction"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "routing evaluation" in result.stdout
    assert "2-fold cross-validated" in result.stdout
    assert "over random routing" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "exactly one of --target-distortion and --target-fallback"),
        (["--target-fallback", "0.3", "--target-distortion", "0.1"], "exactly one"),
        (["--target-fallback", "0.3", "--judge", "llm"], "unknown judge 'llm'"),
    ],
)
def test_calibrate_argument_errors(config, data, extra, message):
    result = runner.invoke(app, ["calibrate", "--data", str(data), *extra, "-c", str(config)])
    assert result.exit_code == 1
    assert message in result.stderr


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", "{oops\n", "bad.jsonl:1: invalid JSON"),
        ("absent.jsonl", None, "no such data file"),
    ],
)
def test_calibrate_rejects_a_bad_data_file(config, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(
        app, ["calibrate", "--data", str(path), "--target-fallback", "0.3", "-c", str(config)]
    )
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_estimate_json(config, data):
    result = runner.invoke(
        app, ["estimate", "--data", str(data), "--n", "3", "--m", "2", "-c", str(config), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert payload["compressor"] == "tight"
    assert payload["n_contexts"] == 3
    assert payload["n_samples"] == 2
    assert payload["temperature"] is None  # extractive: deterministic
    assert 0.0 <= payload["mi_bits"] <= payload["upper_bound_bits"]
    assert payload["ci_bits"][0] <= payload["ci_bits"][1]
    assert payload["bits_per_token"] == pytest.approx(payload["mi_bits"] / payload["mean_tokens"])
    assert isinstance(payload["saturated"], bool)


def test_estimate_summary_and_bad_rung(config, data):
    result = runner.invoke(app, ["estimate", "-d", str(data), "-n", "2", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "I(X; Z | Q)" in result.stdout
    assert "bits/token" in result.stdout
    result = runner.invoke(
        app, ["estimate", "-d", str(data), "--compressor", "huge", "-c", str(config)]
    )
    assert result.exit_code == 1
    assert "no rung named 'huge'" in result.stderr


def test_financebench_shortcut(config):
    result = runner.invoke(
        app,
        [
            *("calibrate", "--data", "financebench", "--target-fallback", "0.5"),
            *("--limit", "2", "-c", str(config), "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert payload["cases_loaded"] == 75
    assert payload["n_cases"] == 2
    assert payload["policy"]["reproduce"].startswith(
        "ib-middleware calibrate --data financebench --target-fallback 0.5 --limit 2"
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_compress_json_with_the_embedded_models(tmp_path):
    case = load_financebench()[0]
    page = tmp_path / "page.txt"
    page.write_text(case.context, encoding="utf-8")
    result = runner.invoke(app, ["compress", "--query", case.query, str(page), "--json"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert payload["decision"] in {"accepted", "fallback"}
    assert payload["input_tokens"] > 256
    ladder = ["segments-tight", "segments-medium", "segments-wide"]
    tried = [attempt["name"] for attempt in payload["attempts"]]
    assert tried == ladder[: len(tried)], "the graded ladder, tightest first"
    if payload["decision"] == "accepted":
        assert payload["output_tokens"] < payload["input_tokens"]
        assert payload["bits_per_token"] is not None
    else:
        assert payload["text"] == case.context
        assert tried == ladder, "every rung is tried before the fallback"
