"""The paper's weight processing, done once per model folder and kept on disk.

TransformerLens's ``enable_compatibility_mode()`` folds the norms into the weights and centres
the unembedding in memory, holding up to six copies of the weights at once: a peak of 6.4 GB
of RSS for gemma-3-270m's 1.07 GB of float32 weights (``benchmarks/loading.py``). For a model
folder loaded in float32, :func:`load_processed` does that once, saves the processed weights as
a plain Hugging Face folder (the unembedding untied, since centring changes it alone) and
checks that a bridge booted from it, with compatibility mode on and processing off, gives
logits and values at every hook point the package reads (:data:`stages.shapes.HOOK_POINTS`)
bit-identical to the live-processed bridge on a probe batch; every later load boots that folder
directly. Models the check refuses (processing that adds a weight the Hugging Face
architecture has no slot for) are processed live on every load, as before.

The folder lives under ``models_dir()/processed/``, named by the source folder's name and
fingerprint, the TransformerLens version, the device type and :data:`VERSION`. Every file's
sha256 is recorded (:data:`stages.models.embedded.DIGEST`) and checked before each load; a
damaged folder is rebuilt, never read.
"""

from __future__ import annotations

import gc
import json
import shutil
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from stages.models.embedded import DIGEST
from stages.shapes import HOOK_POINTS
from stages.store import (
    discard_folder,
    folder_intact,
    models_dir,
    one_at_a_time,
    staged_folder,
    write_folder_digest,
)

VERSION = "1"  # bump when what is saved below changes
MARKER = "stages-processed.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_SKIPPED = {"config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json", DIGEST}


def processed_dir(folder: Path, weights_hash: str, device: str = "cpu") -> Path:
    """Where the processed twin of the model folder ``folder`` is kept for a device type.

    One twin per device type: the processing's reductions may round differently on a GPU, and
    a twin is only ever checked against live processing on the device type it serves.
    """
    tl = version("transformer-lens")
    name = f"{Path(folder).name}-{weights_hash}-tl{tl}-{torch.device(device).type}-v{VERSION}"
    return models_dir() / "processed" / name


def compatibility_mode(bridge: Any, *, processing: bool) -> Any:
    """Turn on ``bridge``'s compatibility mode, with or without the weight processing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge.enable_compatibility_mode(disable_warnings=True, no_processing=not processing)
    return bridge.eval()


def _unwrap(module: Any) -> Any:
    """The Hugging Face module a bridge component wraps (the module itself if none)."""
    while getattr(module, "original_component", None) is not None:
        module = module.original_component
    return module


def hf_state_dict(bridge: Any) -> dict[str, torch.Tensor]:
    """The bridge's current weights under the Hugging Face model's own parameter names.

    The bridge wraps the Hugging Face modules in place, so their ``state_dict`` names carry
    ``_original_component`` and aliases; each name of a freshly built model of the same config
    (on the meta device: no memory) is followed through the wrappers instead. The unembedding
    is always included, untied from the embedding.
    """
    from transformers import AutoModelForCausalLM

    config = bridge.original_model.config
    with torch.device("meta"):
        names = list(AutoModelForCausalLM.from_config(config).state_dict())
    state = {}
    for name in names:
        obj = bridge.original_model
        for part in name.split("."):
            obj = getattr(_unwrap(obj), part)
        state[name] = obj.detach().contiguous()
    return state


def _probe(bridge: Any) -> dict[str, torch.Tensor]:
    """The logits and every :data:`~stages.shapes.HOOK_POINTS` value on a fixed batch.

    ``{"logits": [2, 16, d_vocab], hook name: its value}`` for a pseudo-random ``[2, 16]``
    batch: what the engine and the analyses read, so a twin that agrees here agrees for them.
    """
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, int(bridge.cfg.d_vocab), (2, 16), generator=generator)
    names = {t.format(layer=k) for t in HOOK_POINTS for k in range(bridge.cfg.n_layers)}
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens.to(bridge.cfg.device))
    return {"logits": logits.cpu()} | {name: cache[name].cpu() for name in names}


def load_processed(
    folder: Path, weights_hash: str, boot: Callable[..., Any], **boot_kwargs: Any
) -> Any:
    """A float32 bridge of ``folder`` with the paper's weight processing, kept for next time.

    The first call boots ``folder`` (``boot(str(folder), **boot_kwargs)``), processes it live
    (the one-time peak), keeps the twin and returns the live bridge; later calls boot the twin
    with compatibility mode on and processing off. Where the twin cannot reproduce the live
    logits and hook values bit for bit, the verdict alone is kept and every call processes
    live without trying again; where it cannot be written (a full disk, a read-only models
    folder), a warning says so and every call processes live.
    """
    target = processed_dir(folder, weights_hash, boot_kwargs.get("device", "cpu"))
    with one_at_a_time(target):  # a second process waits, then boots the kept twin
        if (marker := _current(target, Path(folder))) is not None:
            if marker["reproduced"]:
                return compatibility_mode(boot(str(target), **boot_kwargs), processing=False)
            return compatibility_mode(boot(str(folder), **boot_kwargs), processing=True)
        if target.exists():
            warnings.warn(
                f"the processed model folder {target} is damaged or older than its source; "
                "rebuilding it",
                stacklevel=3,
            )
            discard_folder(target)
        bridge = compatibility_mode(boot(str(folder), **boot_kwargs), processing=True)
        try:
            reboot = lambda path: boot(path, **boot_kwargs)  # noqa: E731
            _keep(bridge, Path(folder), target, weights_hash, reboot)
        except Exception as err:  # a full disk (safetensors raises its own error), a read-only
            # folder, an architecture whose modules cannot be walked: keep nothing, lose nothing
            warnings.warn(
                f"could not keep the processed weights in {target} ({err}); they are processed "
                "again on every load",
                stacklevel=3,
            )
        return bridge


def _source_files(folder: Path) -> dict[str, list[int]]:
    """``name -> [size, mtime_ns]`` of the source folder's files (a file replaced shows)."""
    return {
        path.name: [path.stat().st_size, path.stat().st_mtime_ns]
        for path in sorted(folder.iterdir())
        if path.is_file()
    }


def _current(target: Path, folder: Path) -> dict[str, Any] | None:
    """``target``'s marker if it is finished, intact and made from ``folder`` as it is now."""
    try:
        marker = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if "reproduced" not in marker or marker.get("source_files") != _source_files(folder):
        return None
    return marker if folder_intact(target, DIGEST) else None


def _keep(bridge: Any, folder: Path, target: Path, weights_hash: str, boot: Callable) -> None:
    """Save ``bridge``'s processed weights as ``target``, checked by a bridge booted from them.

    Where they differ, ``target`` keeps only its marker, with ``"reproduced": false``.

    Raises:
        Exception: the folder cannot be written (``OSError``, safetensors' own error).
    """
    from safetensors.torch import save_file

    expected = _probe(bridge)
    with staged_folder(target) as out:
        save_file(hf_state_dict(bridge), str(out / "model.safetensors"), {"format": "pt"})
        config = json.loads((folder / "config.json").read_text())
        for cfg in (config, config.get("text_config") or {}):
            cfg["tie_word_embeddings"] = False
        (out / "config.json").write_text(json.dumps(config, indent=2))
        for path in folder.iterdir():
            if path.is_file() and path.name not in _SKIPPED and path.suffix not in _WEIGHT_SUFFIXES:
                shutil.copy(path, out / path.name)
        twin = compatibility_mode(boot(str(out)), processing=False)
        got = _probe(twin)
        agrees = got.keys() == expected.keys() and all(
            torch.equal(got[name], value) for name, value in expected.items()
        )
        del twin
        gc.collect()
        if not agrees:  # keep only the verdict, so later loads do not try again
            for path in list(out.iterdir()):
                path.unlink()
        marker = {"source": str(folder), "weights_hash": weights_hash, "version": VERSION,
                  "transformer_lens": version("transformer-lens"), "reproduced": agrees,
                  "source_files": _source_files(folder)}  # fmt: skip
        (out / MARKER).write_text(json.dumps(marker, indent=2))
        write_folder_digest(out, DIGEST)
