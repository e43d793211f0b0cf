"""The model zoo: four families, each in a ``tiny`` and a ``full`` profile.

``tiny`` models are built from configs with a fixed seed (bit-for-bit the same on every run,
without touching the caller's random state), then take the weights pretrained on the shipped
corpora by ``scripts/pretrain_tiny.py`` (``common_utils/data/pretrained/<family>.safetensors``;
BERT's pooler and classifier head stay seed-initialised), and use the tokenizer shipped in
``common_utils/data/tokenizer``. ``full`` models name the course's reference hub checkpoints at
pinned commits and are only loaded on GPU runners; nothing here downloads under ``tiny``. With
COURSE_WEIGHTS=random, ``full`` builds the same architectures from the configs shipped here with
random weights (see ``common_utils.profiles``); ``build_on_meta`` gives any of them without memory.

    model = load_model("llama")                          # tiny, full precision
    model = load_model("llama", quantization="nf4")      # QLoRA base (bitsandbytes)
    tok = load_tokenizer()
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from common_utils.profiles import get_profile, get_weights
from common_utils.quantization import QUANTIZATION_MODES, quantization_config, safeguard_4bit

TOKENIZER_DIR = Path(__file__).resolve().parent / "data" / "tokenizer"
PRETRAINED_DIR = Path(__file__).resolve().parent / "data" / "pretrained"
TINY_SEED = 1234


@dataclass(frozen=True)
class ModelSpec:
    family: str
    task: str  # causal-lm | sequence-classification | seq2seq
    auto_class: str  # the transformers Auto* class that loads it
    hub_id: str | None = None  # full profile
    revision: str | None = None  # full profile: the hub commit, pinned
    tiny_config: dict | None = None  # tiny profile: config class name + kwargs
    full_config: dict | None = None  # full profile: the checkpoint's architecture (its config.json), shipped


# Tiny sizes: hidden 64, 2 layers, 4 heads; intermediate sizes are set because Llama's default
# (11008) would make a "tiny" model of 3M parameters.
# `full` names each family's reference checkpoint at a pinned commit (the snapshot hash the hub
# serves for it), and ships its architecture: the values of the checkpoint's config.json that
# shape the model, so that COURSE_WEIGHTS=random builds the same modules without the hub.
FAMILIES: dict[str, dict[str, ModelSpec]] = {
    "llama": {
        "tiny": ModelSpec("llama", "causal-lm", "AutoModelForCausalLM", tiny_config={
            "class": "LlamaConfig", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 4, "intermediate_size": 128, "max_position_embeddings": 256,
            "tie_word_embeddings": False}),
        "full": ModelSpec("llama", "causal-lm", "AutoModelForCausalLM", hub_id="NousResearch/Llama-2-7b-hf",
                          revision="dacdfcde31297e34b19ee0e7532f29586d2c17bc", full_config={
            "class": "LlamaConfig", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "hidden_act": "silu",
            "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}),
    },
    "bert": {
        "tiny": ModelSpec("bert", "sequence-classification", "AutoModelForSequenceClassification", tiny_config={
            "class": "BertConfig", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 128, "max_position_embeddings": 256, "num_labels": 2}),
        "full": ModelSpec("bert", "sequence-classification", "AutoModelForSequenceClassification",
                          hub_id="google-bert/bert-base-uncased", revision="86b5e0934494bd15c9632b12f734a8a67f723594",
                          full_config={
            "class": "BertConfig", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
            "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "num_labels": 2}),
    },
    "gpt2": {
        "tiny": ModelSpec("gpt2", "causal-lm", "AutoModelForCausalLM", tiny_config={
            "class": "GPT2Config", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 256}),
        "full": ModelSpec("gpt2", "causal-lm", "AutoModelForCausalLM", hub_id="openai-community/gpt2",
                          revision="607a30d783dfa663caf39e06633721c8d4cfcd7e", full_config={
            "class": "GPT2Config", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
            "n_head": 12, "bos_token_id": 50256, "eos_token_id": 50256}),
    },
    "t5": {
        "tiny": ModelSpec("t5", "seq2seq", "AutoModelForSeq2SeqLM", tiny_config={
            "class": "T5Config", "d_model": 64, "d_ff": 128, "d_kv": 16, "num_layers": 2, "num_decoder_layers": 2,
            "num_heads": 4}),
        "full": ModelSpec("t5", "seq2seq", "AutoModelForSeq2SeqLM", hub_id="google-t5/t5-small",
                          revision="df1b051c49625cf57a3d0d8d3863ed4d13564fe4", full_config={
            "class": "T5Config", "vocab_size": 32128, "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6,
            "num_decoder_layers": 6, "num_heads": 8, "relative_attention_num_buckets": 32,
            "feed_forward_proj": "relu", "layer_norm_epsilon": 1e-6, "tie_word_embeddings": True,
            "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}),
    },
}


def get_model_spec(family: str, profile: str | None = None) -> ModelSpec:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; valid families: {', '.join(FAMILIES)}")
    return FAMILIES[family][get_profile(profile)]


def load_tokenizer(profile: str | None = None, family: str = "llama"):
    """The tokenizer of a family: the shipped BPE tokenizer under ``tiny`` (shared by all four) and
    under ``full`` with random weights (its ids lie inside every full vocabulary); the pinned hub
    tokenizer under ``full`` otherwise."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    spec = get_model_spec(family, profile)
    if spec.hub_id is None or get_weights(profile) == "random":
        if not (TOKENIZER_DIR / "tokenizer.json").is_file():
            raise FileNotFoundError(f"{TOKENIZER_DIR}/tokenizer.json is missing; run scripts/train_tokenizer.py")
        return PreTrainedTokenizerFast.from_pretrained(TOKENIZER_DIR)
    tok = AutoTokenizer.from_pretrained(spec.hub_id, revision=spec.revision)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_config(family: str):
    import transformers

    spec = get_model_spec(family, "tiny")
    kwargs = dict(spec.tiny_config)
    config_class = getattr(transformers, kwargs.pop("class"))
    tok = load_tokenizer("tiny")
    ids = {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
           "eos_token_id": tok.eos_token_id}
    if family == "t5":
        ids["decoder_start_token_id"] = tok.pad_token_id
    return config_class(**ids, **kwargs)


def full_config(family: str):
    """The ``full`` checkpoint's architecture, from the config the repository ships (no hub)."""
    import transformers

    kwargs = dict(get_model_spec(family, "full").full_config)
    return getattr(transformers, kwargs.pop("class"))(**kwargs)


def build_on_meta(family: str, profile: str | None = None) -> torch.nn.Module:
    """The family's model on the meta device: every module and shape, no memory, no weights.
    Parameter counts of the ``full`` architectures come from here on any machine."""
    import transformers

    spec = get_model_spec(family, profile)
    config = full_config(family) if spec.full_config else tiny_config(family)
    with torch.device("meta"):
        return getattr(transformers, spec.auto_class).from_config(config)


def default_device(profile: str | None = None) -> str:
    """Where a profile's models live: the GPU under ``full`` when there is one, else the CPU
    (``tiny`` always runs on the CPU, so its results are the same on every machine)."""
    return "cuda" if get_profile(profile) == "full" and torch.cuda.is_available() else "cpu"


def _random_device(device_map) -> str:
    """A device named by ``device_map`` ("cuda:1", "cpu"), else the full profile's own."""
    if isinstance(device_map, str) and device_map not in ("auto", "balanced", "sequential"):
        return device_map
    return default_device("full")


def _build_random_full(family: str, device: str) -> torch.nn.Module:
    """The full architecture with seeded random weights, built where it will run (bf16 on a GPU
    that has it, fp32 elsewhere)."""
    import transformers

    spec = get_model_spec(family, "full")
    bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices), torch.device(device):
        torch.manual_seed(TINY_SEED)
        return getattr(transformers, spec.auto_class).from_config(
            full_config(family), dtype=torch.bfloat16 if bf16 else torch.float32)


def _random_full_checkpoint(family: str) -> Path:
    """The random-weight full model saved once (quantized loading reads a checkpoint, so the
    QLoRA path is the same as with hub weights)."""
    config = full_config(family).to_json_string(use_diff=False)
    key = hashlib.sha256(f"{family}:{TINY_SEED}:{config}".encode()).hexdigest()[:16]
    path = shared_cache() / f"full-random-{family}-{key}"
    if not (path / "config.json").is_file():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        model = _build_random_full(family, default_device("full"))
        model.save_pretrained(tmp, safe_serialization=True)
        del model
        tmp.rename(path) if not path.exists() else shutil.rmtree(tmp, ignore_errors=True)
    return path


def shared_cache() -> Path:
    """The course's model cache: $COURSE_CACHE, else ~/.cache/llm-one-piece. Under ``full`` the
    grader fills it (hub snapshots under ``hf/``, random checkpoints) and kernels only read it."""
    return Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "llm-one-piece"))


def prepare_random_full(family: str = "llama") -> Path:
    """Write the random-weight checkpoint of ``family`` into the shared cache before grading, so
    that sandboxed kernels (which cannot write there) load it for their quantized models."""
    return _random_full_checkpoint(family)


def _build_tiny(family: str) -> torch.nn.Module:
    import transformers

    spec = get_model_spec(family, "tiny")
    config = tiny_config(family)
    auto = getattr(transformers, spec.auto_class)
    # A private RNG: the same weights every time, and the caller's random state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = auto.from_config(config)
    _load_pretrained(family, model)
    return model


def pretrained_weights(family: str) -> Path | None:
    path = PRETRAINED_DIR / f"{family}.safetensors"
    return path if path.is_file() else None


def _load_pretrained(family: str, model: torch.nn.Module) -> None:
    """Copy the shipped pretrained tensors in; every tensor of the model but BERT's head is covered."""
    from safetensors.torch import load_file

    path = pretrained_weights(family)
    if path is None:
        return
    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    # Tied / shared tensors are stored once; BERT's pooler and classifier are task heads.
    allowed = ("lm_head.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
               "bert.pooler.", "classifier.")
    stray = [k for k in missing if not k.startswith(allowed)] + list(unexpected)
    if stray:
        raise RuntimeError(f"{path} does not fit the tiny {family} config ({stray[:3]}); run scripts/pretrain_tiny.py")
    if hasattr(model, "tie_weights"):
        model.tie_weights()


def _tiny_checkpoint(family: str) -> Path:
    """The tiny model saved once as safetensors (quantized loading reads from a checkpoint)."""
    config = tiny_config(family).to_json_string(use_diff=False)
    weights = pretrained_weights(family)
    stamp = hashlib.sha256(weights.read_bytes()).hexdigest() if weights else "none"
    key = hashlib.sha256(f"{family}:{TINY_SEED}:{config}:{stamp}".encode()).hexdigest()[:16]
    path = shared_cache() / f"tiny-{family}-{key}"
    if not (path / "config.json").is_file():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        _build_tiny(family).save_pretrained(tmp, safe_serialization=True)
        tmp.rename(path) if not path.exists() else None
    return path


def load_model(family: str, profile: str | None = None, *, quantization: str = "none", for_training: bool = False,
               device_map: str | dict | None = None) -> torch.nn.Module:
    """A model of ``family`` for this profile, optionally quantized (int8 / fp4 / nf4).

    Refuses an unknown family, profile or quantization mode with the valid options, and a
    quantization bitsandbytes cannot do on this machine with the reason.
    """
    import transformers

    spec = get_model_spec(family, profile)
    if spec.hub_id is None:  # tiny loads in milliseconds: progress bars would only be noise
        transformers.utils.logging.disable_progress_bar()
    if quantization not in QUANTIZATION_MODES:
        raise ValueError(f"unknown quantization {quantization!r}; valid modes: {', '.join(QUANTIZATION_MODES)}")
    auto = getattr(transformers, spec.auto_class)
    random_full = spec.hub_id is not None and get_weights(profile) == "random"
    if quantization == "none" and spec.hub_id is None:
        model = _build_tiny(family)
    elif quantization == "none" and random_full:
        model = _build_random_full(family, _random_device(device_map))
    else:
        if random_full:
            source = str(_random_full_checkpoint(family))
        else:
            source = str(_tiny_checkpoint(family)) if spec.hub_id is None else spec.hub_id
        kwargs = {"revision": spec.revision} if spec.hub_id and not random_full else {}
        if spec.hub_id and not random_full and quantization == "none" and torch.cuda.is_available():
            # A 7B model in fp32 does not fit a runner's host memory: bf16, straight onto the GPU.
            kwargs.update(dtype=torch.bfloat16, device_map=device_map or "cuda")
        if quantization != "none":
            kwargs["quantization_config"] = quantization_config(quantization)
            kwargs["device_map"] = device_map or ("auto" if torch.cuda.is_available() else "cpu")
        elif device_map is not None:
            kwargs["device_map"] = device_map
        model = auto.from_pretrained(source, **kwargs)
        if quantization in ("fp4", "nf4"):
            safeguard_4bit(model)
    model.train(for_training)
    return model


def describe(family: str, profile: str | None = None) -> str:
    spec = get_model_spec(family, profile)
    return json.dumps({"family": family, "task": spec.task, "hub_id": spec.hub_id, "revision": spec.revision,
                       "weights": get_weights(profile)})
