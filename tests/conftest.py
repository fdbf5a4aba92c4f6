"""Shared fixtures: a tiny tokenizer and tiny seeded random-init float64 models.

Every architecture family the paper's claims rest on is represented: sequential blocks (GPT-2),
parallel blocks (GPT-NeoX as in Pythia, and Phi), and Gemma 3 (pre- and post-norms, alternating
sliding-window and global attention with different RoPE bases).
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# A public-domain paragraph (Melville, Moby-Dick, ch. 1) to train the tiny tokenizer on.
TEXT = (
    "Call me Ishmael. Some years ago - never mind how long precisely - having little or no "
    "money in my purse, and nothing particular to interest me on shore, I thought I would sail "
    "about a little and see the watery part of the world. It is a way I have of driving off the "
    "spleen and regulating the circulation. Whenever I find myself growing grim about the mouth; "
    "whenever it is a damp, drizzly November in my soul; whenever I find myself involuntarily "
    "pausing before coffin warehouses, and bringing up the rear of every funeral I meet; and "
    "especially whenever my hypos get such an upper hand of me, that it requires a strong moral "
    "principle to prevent me from deliberately stepping into the street, and methodically "
    "knocking people's hats off - then, I account it high time to get to sea as soon as I can. "
    "This is my substitute for pistol and ball. With a philosophical flourish Cato throws "
    "himself upon his sword; I quietly take to the ship. There is nothing surprising in this. "
    "If they but knew it, almost all men in their degree, some time or other, cherish very "
    "nearly the same feelings towards the ocean with me."
)

ARCHS = ("gpt2", "neox", "phi", "gemma3")


# The user's result cache, before the tests isolate theirs (see shared_results).
USER_RESULTS: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _isolated_result_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Results and corpus caches go to a temporary folder; the converted model is shared."""
    from stages.store import models_dir, results_dir

    USER_RESULTS.append(results_dir())
    os.environ["STAGES_MODELS_DIR"] = str(models_dir())
    os.environ["STAGES_CACHE_DIR"] = str(tmp_path_factory.mktemp("stages-cache"))


SHARED_ANALYSES = ("neurons",)


def shared_results() -> None:
    """Copy the user's cached neuron classes of real models into the tests' isolated cache.

    They depend on the weights only and take minutes for a model without a results pack.
    Entries are keyed by the weights hash, the package versions and the source of
    ``stages.analyses.neurons`` (and what it imports), so a stale one is never read, and
    ``tests/analyses/test_neurons.py`` tests the computation itself.
    """
    from stages.store import results_dir

    if not USER_RESULTS:
        return
    for analysis in SHARED_ANALYSES:
        source = USER_RESULTS[0] / analysis
        if source.is_dir() and source != results_dir() / analysis:
            shutil.copytree(source, results_dir() / analysis, dirs_exist_ok=True)


@pytest.fixture
def user_result_cache(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Use the user's result cache (the one the book fills) for one test; returns its folder.

    For the live slice checks of the shipped packs: the slices the default book computed are
    there, under keys that hold the hash of the code that computed them, the weights hash and
    the package versions, so an entry is today's code's result or it is computed again here
    (and kept, as the book would keep it).
    """
    if not USER_RESULTS:
        pytest.skip("the user's result cache is not known")
    monkeypatch.setenv("STAGES_CACHE_DIR", str(USER_RESULTS[0].parent))
    return USER_RESULTS[0]


def make_tiny_tokenizer(texts: list[str] | None = None, vocab_size: int = 320):
    """A small byte-level BPE tokenizer with ``<bos>``/``<eos>``/``<pad>``, trained in memory.

    No network and no Hugging Face hub; trained on ``texts`` (default: TEXT).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts or [TEXT] * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tiny_tokenizer()


def make_tiny_hf(arch: str, vocab: int, seed: int = 0) -> torch.nn.Module:
    """A tiny random-init float64 Hugging Face causal LM of family ``arch`` (eager attention)."""
    import transformers as tf

    special = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    # the sizes the GPT-NeoX, Phi and Gemma 3 configs share (GPT-2 names them differently)
    sizes = dict(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, max_position_embeddings=64,
        **special,
    )  # fmt: skip
    if arch == "gpt2":
        cfg = tf.GPT2Config(
            vocab_size=vocab, n_positions=64, n_embd=32, n_layer=5, n_head=4, **special
        )
        cls = tf.GPT2LMHeadModel
    elif arch == "neox":
        cfg = tf.GPTNeoXConfig(
            num_hidden_layers=5, num_attention_heads=4, use_parallel_residual=True,
            rotary_pct=0.5, **sizes,
        )  # fmt: skip
        cls = tf.GPTNeoXForCausalLM
    elif arch == "phi":
        cfg = tf.PhiConfig(
            num_hidden_layers=5, num_attention_heads=4, partial_rotary_factor=0.5, **sizes
        )
        cls = tf.PhiForCausalLM
    elif arch == "gemma3":
        # Two sliding-window layers (window 4) then a global one, twice: swaps and drops cross
        # the boundary between attention types, and the window is shorter than the sequences.
        types = ["sliding_attention", "sliding_attention", "full_attention"] * 2
        cfg = tf.Gemma3TextConfig(
            num_hidden_layers=6, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
            sliding_window=4, layer_types=types, **sizes,
        )  # fmt: skip
        cls = tf.Gemma3ForCausalLM
    else:
        raise ValueError(arch)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = cls(cfg)
    # Random-init norms are the identity; perturb them so folding and post-norms are exercised.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or "ln" in name:
                param.add_(0.1 * torch.randn_like(param))
            elif name.endswith("bias"):
                param.normal_(0.0, 0.05)
    return model.double().eval()


def tiny_recipe(root: Path, arch: str, tokenizer, **recipe: object):
    """A results-pack recipe for a tiny ``arch`` model saved under ``root``, on a TEXT corpus.

    ``recipe`` sets the sample (``n_seq``, ``seq_len``, ``batch_size``, ...); the model folder is
    ``root / f"tiny-{arch}"`` and the recipe's dtype float64.
    """
    from stages.results.pack import Recipe

    folder = root / f"tiny-{arch}"
    make_tiny_hf(arch, len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    corpus = root / "corpus.txt"
    corpus.write_text((TEXT + "\n") * 40)
    return Recipe(model=str(folder), corpus=str(corpus), dtype="float64", **recipe)


@pytest.fixture(scope="session")
def tiny_models(tiny_tokenizer) -> Callable[[str], tuple[object, torch.nn.Module]]:
    """``tiny_models(arch) -> (bridge, reference_hf_model)``, built once per architecture.

    The bridge wraps its own copy; the reference is an untouched deep copy for the slow path.
    """
    import stages

    built: dict[str, tuple[object, torch.nn.Module]] = {}

    def get(arch: str):
        if arch not in built:
            hf = make_tiny_hf(arch, len(tiny_tokenizer))
            reference = copy.deepcopy(hf)
            bridge = stages.load_model(hf, tokenizer=tiny_tokenizer, device="cpu", dtype="float64")
            built[arch] = (bridge, reference)
        return built[arch]

    return get


@pytest.fixture(scope="session")
def tiny_tokens(tiny_tokenizer) -> torch.Tensor:
    """``[6, 24]`` token ids from TEXT, each row starting with BOS."""
    ids = tiny_tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    rows = [[tiny_tokenizer.bos_token_id] + ids[k * 23 : (k + 1) * 23] for k in range(6)]
    return torch.tensor(rows, dtype=torch.long)


def require_browser() -> None:
    """Skip without chromium, except under CI (``CI`` set), where a missing browser fails."""
    missing = []
    if shutil.which("chromium") is None:
        missing.append("chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        message = "browser check needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + "; under CI it must not be skipped")
        pytest.skip(message)
