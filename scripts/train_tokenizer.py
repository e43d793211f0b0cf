"""Train the course's tiny byte-level BPE tokenizer on the shipped corpora; save it as a
transformers tokenizer in common_utils/data/tokenizer/ (deterministic: the same files each run).

    .venv/bin/python scripts/train_tokenizer.py
"""
from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

DATA = Path(__file__).resolve().parent.parent / "common_utils" / "data"
VOCAB_SIZE = 1024  # bytes (256) + merges: enough for the course's zh-TW and English templates
SPECIAL = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
# ChatML: the template the chat-style labs use (tokenizer.apply_chat_template).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PROMPT_SCAFFOLD = ["### Instruction:\n", "\n\n### Input:\n", "\n\n### Response:\n", "### Context:\n"]


def corpus() -> list[str]:
    texts = list(PROMPT_SCAFFOLD)
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.extend(str(v) for v in json.loads(line).values() if isinstance(v, str))
    return texts


def train() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def main(out: Path = DATA / "tokenizer") -> Path:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=train(), bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token=None, model_max_length=512, padding_side="right")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    print(f"saved {out} with {len(fast)} tokens")
    return out


if __name__ == "__main__":
    main()
