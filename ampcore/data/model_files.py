"""Local model directories, checked before transformers reads them.

transformers fills gaps silently (no tokenizer files: a 5-token tokenizer; a config with
``auto_map``: a prompt to run the directory's code) or fails with a bare library error (a
truncated checkpoint). These checks turn each into a WeightsError that names the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ampcore.core.errors import WeightsError

# The checkpoint layouts transformers reads, in the order it prefers them: (single, index).
CHECKPOINTS = (("model.safetensors", "model.safetensors.index.json"),
               ("pytorch_model.bin", "pytorch_model.bin.index.json"))
WEIGHT_FILES = tuple(name for pair in CHECKPOINTS for name in pair)
# Any one of these gives a tokenizer its vocabulary (WordPiece, BPE, SentencePiece, fast).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model",
                   "spiece.model", "sentencepiece.bpe.model")
CODE_CONFIGS = ("config.json", "tokenizer_config.json")


def has_weights(directory: Path) -> bool:
    return any((directory / name).is_file() for name in WEIGHT_FILES)


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; a WeightsError naming it when it is not one."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path} is not a readable JSON file: {exc}. Replace it with the "
                           "model's original file.") from exc
    if not isinstance(value, dict):
        raise WeightsError(f"{path} holds a JSON {type(value).__name__}, not an object; "
                           "replace it with the model's original file.")
    return value


def check_directory(directory: Path, option: str = "--bert-model") -> None:
    """A config, no custom code, and tokenizer files; before any transformers call.
    ``option``: where the user named the directory, for the message."""
    if not (directory / "config.json").is_file():
        raise WeightsError(f"{directory} has no config.json; give {option} a Hugging Face "
                           "model directory (config.json, tokenizer files, weights).")
    for name in CODE_CONFIGS:
        path = directory / name
        # auto_map names Python files of the model directory that transformers would import.
        if path.is_file() and "auto_map" in read_json(path):
            raise WeightsError(
                f"{path} has an 'auto_map': the model needs custom code from {directory}, and "
                "ampcore never runs a model directory's code (trust_remote_code=False). Use a "
                "model whose architecture transformers ships.")
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise WeightsError(
            f"{directory} has no tokenizer files (expected one of {', '.join(TOKENIZER_FILES)}); "
            "without them transformers builds a tokenizer of only its special tokens and every "
            "review becomes [CLS] [UNK] ... [SEP]. Copy the tokenizer files of the model "
            "(e.g. from its hub repository) into the directory.")


def checkpoint_files(directory: Path) -> list[Path]:
    """The weight files transformers will read: safetensors first, as it prefers them."""
    for single, index in CHECKPOINTS:
        if (directory / single).is_file():
            return [directory / single]
        if (directory / index).is_file():
            weight_map = read_json(directory / index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise WeightsError(f"{directory / index} has no 'weight_map'; replace it with "
                                   "the model's original index file.")
            shards = [directory / name for name in sorted(set(map(str, weight_map.values())))]
            missing = [p.name for p in shards if not p.is_file()]
            if missing:
                raise WeightsError(f"{directory / index} lists shard(s) {missing} that are not "
                                   f"in {directory}; copy the complete checkpoint.")
            return shards
    return []


def check_checkpoint(path: Path) -> None:
    """Open a weight file's header (safetensors) or tensor index (pickle) without its data."""
    if path.suffix == ".safetensors":
        _check_safetensors(path)
    else:
        _check_pickle(path)


def _check_safetensors(path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        # Parsing the header also checks that the file is as long as the header says.
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path} is not a valid safetensors file: {exc} ({path.stat().st_size} "
                           "bytes). It is empty, truncated or damaged: download or copy it "
                           "again.") from exc


def _check_pickle(path: Path) -> None:
    """A pickle checkpoint loaded as transformers will: weights_only=True, which unpickles
    tensors and containers only, never arbitrary objects (a pickle can run code)."""
    import pickle

    import torch

    try:
        # map_location="meta": read the tensor index, not the data.
        state = torch.load(str(path), map_location="meta", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path} was refused: loading it with weights_only=True found more than tensors "
            f"({_pickle_reason(exc)}). ampcore does not unpickle arbitrary objects; convert the "
            "checkpoint to model.safetensors from a trusted environment.") from exc
    except (OSError, EOFError, RuntimeError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: "
                           f"{exc or 'no data'}; {path.stat().st_size} bytes): it is empty, "
                           "truncated or damaged; download or copy it again.") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict of "
                           "tensors; save the model's state_dict (or model.safetensors).")


def _pickle_reason(exc: Exception) -> str:
    """torch's several-paragraph message reduced to the line that names the blocked object."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (named or lines or ["unknown reason"])[0]
