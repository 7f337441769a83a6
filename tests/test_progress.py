"""What a writer watches while a model trains: how its samples are shown."""

import io

from rich.console import Console

from finetune.progress import DOCUMENT_BREAK, Reporter

from .conftest import GPT2_TOKENIZER


def test_a_gpt2_training_sample_shows_a_document_break_not_the_token():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(GPT2_TOKENIZER)
    ids = [*tokenizer.encode("the end of one story."), tokenizer.eos_token_id, *tokenizer.encode("The next one [b]egins")]
    console = Console(file=io.StringIO(), width=100)
    Reporter(console).sample(50, tokenizer.decode(ids))  # decoded as a GPT-2 model's sample during training is
    assert console.file.getvalue().splitlines() == ["--- sample at step 50 ---", "the end of one story.",
                                                    DOCUMENT_BREAK.strip(), "The next one [b]egins"]
