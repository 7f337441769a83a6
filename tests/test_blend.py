"""Blending models at writing time (assistant.blending, contract.blend) on tiny real models."""

import warnings
from pathlib import Path

import pytest

from assistant.blending import BlendWarning, parse
from assistant.generation import load_model
from corpora import UserError
from tests.conftest import run_cli


def test_weights_one_and_zero_write_what_the_first_model_writes(trained_model: Path, quoted_model: Path) -> None:
    alone = load_model(trained_model, "cpu").generate("The robot", max_new_chars=120, seed=5)
    same_alphabet = load_model(f"{trained_model}+{trained_model}@last@1,0", "cpu")
    assert same_alphabet.generate("The robot", max_new_chars=120, seed=5) == alone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlendWarning)
        other = load_model(f"{trained_model}+{quoted_model}", "cpu", weights="0.5,0.5")
    assert other.generate("The robot", max_new_chars=120, seed=5) != alone  # the second model does count


def test_a_blend_of_different_alphabets_writes_only_shared_characters(trained_model: Path, quoted_model: Path) -> None:
    with pytest.warns(BlendWarning, match="lacks") as caught:
        blend = load_model(f"{trained_model}+{quoted_model}@0.5,0.5", "cpu")
    lacking = set("".join(blend.lacking.values()))
    assert lacking and "quoted@best-val lacks" in str(caught[0].message)
    text = "".join(blend.generate("", max_new_chars=400, seed=seed, temperature=1.5) for seed in range(3))
    assert len(text) >= 1000 and not (set(text) & lacking)
    alone = set(load_model(trained_model, "cpu").generate("", max_new_chars=1200, seed=1, temperature=1.5))
    assert alone & lacking  # the PKD model alone does write them


def test_a_gpt2_blended_with_itself_writes_as_it_does_alone(gpt2_base: Path) -> None:
    alone = load_model(gpt2_base, "cpu").generate("It was", max_new_tokens=24, seed=3)
    assert load_model(f"{gpt2_base}+{gpt2_base}@0.5,0.5", "cpu").generate("It was", max_new_tokens=24, seed=3) == alone


@pytest.mark.parametrize(("name", "weights", "said"), [
    ("a+b", "0.7,0.7", "sum to 1"),
    ("a+b", "0.5,0.3,0.2", "2 models blended need 2 weights"),
    ("a+b@1,0", "0.5,0.5", "says otherwise"),
    ("a+b", "x,y", "numbers separated by commas"),
    ("a++b", None, r"MODEL\+MODEL"),
])
def test_weights_that_do_not_fit_are_one_line(name: str, weights: str | None, said: str) -> None:
    with pytest.raises(UserError, match=said):
        parse(name, weights)


def test_the_cli_blends_and_refuses_kinds_that_share_no_tokens(trained_model: Path, quoted_model: Path,
                                                                gpt2_base: Path) -> None:
    run = run_cli("generate", f"{trained_model}+{quoted_model}", "--weights", "0.5,0.5", "-p", "The", "-l", "60",
                  "--seed", "1", "--no-log")
    assert run.returncode == 0, run.stderr
    assert "lacks" in run.stderr and len(run.stdout) >= 60
    mixed = run_cli("generate", f"{trained_model}+{gpt2_base}", "-p", "The", "--no-log")
    assert mixed.returncode == 2 and mixed.stderr.count("\n") == 1
    assert "different kinds" in mixed.stderr and "Traceback" not in mixed.stderr
    unknown = run_cli("generate", f"{trained_model}+no-such-model", "--no-log")
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr and "Traceback" not in unknown.stderr


def test_the_http_api_writes_a_blend_as_the_cli_does(trained_model: Path, quoted_model: Path, isolated_home: Path) -> None:
    import openai

    from tests.test_serve import serving

    (isolated_home / "models").mkdir(parents=True, exist_ok=True)
    (isolated_home / "models" / "quoted").symlink_to(quoted_model)
    blend = f"{trained_model}+quoted@0.6,0.4"
    with serving(str(trained_model)) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        answer = client.completions.create(model=blend, prompt="The man said", max_tokens=40, seed=11, temperature=0.8)
        with pytest.raises(openai.BadRequestError, match="sum to 1"):
            client.completions.create(model=f"{trained_model}+quoted@0.6,0.6", prompt="The", max_tokens=4)
    cli = run_cli("generate", blend, "-p", "The man said", "--tokens", "40", "--seed", "11", "-t", "0.8", "--no-echo",
                  "--no-log")
    assert cli.returncode == 0 and cli.stdout == answer.choices[0].text + "\n" and len(answer.choices[0].text) == 40


def test_prompt_guidance_at_one_is_the_model_and_at_zero_ignores_the_prompt(trained_model: Path) -> None:
    from assistant.blending import prompt_guided

    model = load_model(trained_model, "cpu")
    greedy = {"max_new_chars": 80, "temperature": 0, "seed": 1}
    prompt = "The robot looked at the door"
    assert prompt_guided(model, 1.0).generate(prompt, **greedy) == model.generate(prompt, **greedy)
    assert prompt_guided(model, 0.0).generate(prompt, **greedy) == model.generate("", **greedy)
    sampled = {"max_new_chars": 80, "seed": 1}
    assert prompt_guided(model, 3.0).generate(prompt, **sampled) != model.generate(prompt, **sampled)
    with pytest.raises(UserError, match="prompt-guidance"):
        prompt_guided(model, float("nan"))


def test_report_blend_tabulates_each_author_copying_and_prompts(trained_model: Path, quoted_model: Path,
                                                                 tmp_path: Path) -> None:
    run = run_cli("report", str(trained_model), str(quoted_model), "--blend", "--eval-samples", "2", "--device", "cpu",
                  "-o", str(tmp_path / "blend.svg"))
    assert run.returncode == 0, run.stderr
    for label in ("tiny-pkd alone", "1/0", "0.75/0.25", "0.5/0.5", "0.25/0.75", "0/1", "quoted alone", "copying"):
        assert label in run.stdout, (label, run.stdout)
    assert (tmp_path / "blend.svg").stat().st_size > 1000
    one = run_cli("report", str(trained_model), "--blend")
    assert one.returncode == 2 and "two models" in one.stderr


def test_the_repl_writes_a_blend_as_the_generation_api_does(trained_model: Path, quoted_model: Path,
                                                             isolated_home: Path) -> None:
    from assistant.repl import Repl

    blend = f"{trained_model}+{quoted_model}@0.5,0.5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlendWarning)
        repl = Repl(str(trained_model), min_span=50)
        for line in (f"/model {blend}", "/seed 4", "/length 80", "The robot"):
            repl.handle(line)
        alone = load_model(blend, "cpu").generate("The robot", max_new_chars=80, seed=4, temperature=0.8)
    assert repl.last is not None and repl.last.text == alone and len(alone) == 80


def test_samples_check_of_a_stored_blend_sample_checks_each_corpus(trained_model: Path, quoted_model: Path,
                                                                    pkd_slice: Path, isolated_home: Path) -> None:
    from assistant.samples.recording import check_stored, written
    from assistant.samples.store import Store

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlendWarning)
        blend = load_model(f"{trained_model}+{quoted_model}@0.5,0.5", "cpu")
    _, sample_id = written(blend, "The", "cli", max_new_chars=40, seed=1)
    assert sample_id is not None
    with Store() as store:
        sample = store.get(sample_id)
        assert sample.corpus == "+".join(load_model(m, "cpu").card.corpus.name for m in (trained_model, quoted_model))
        span, index = check_stored(store, sample)
    for corpus in (pkd_slice / "beyond-the-door.txt", quoted_model.parent / "quoted.txt"):
        span = index.longest_span(corpus.read_text(encoding="utf-8-sig")[5000:5100])  # raw text: newlines unwrapped
        assert span is not None and span.length >= 50 and span.document.endswith(corpus.name)
    run = run_cli("samples", "check", str(sample_id))
    assert run.returncode == 0, run.stderr


def test_the_copy_guard_of_a_blend_keeps_each_corpus_under_the_limit(parrot: Path, trained_model: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlendWarning)
        blend = load_model(f"{parrot}+{trained_model}@0.8,0.2", "cpu")
    indexes = blend.card.corpus_index().indexes
    assert len(indexes) == 2
    free = [blend.generate("", max_new_chars=150, seed=s, temperature=0.8) for s in range(6)]
    assert any(index.longest_span(t).length > 40 for t in free for index in indexes)  # it copies without the guard
    for seed in range(20):
        text = blend.generate("", max_new_chars=120, seed=seed, temperature=0.8, max_copy=40)
        assert all(index.longest_span(text).length <= 40 for index in indexes), text
