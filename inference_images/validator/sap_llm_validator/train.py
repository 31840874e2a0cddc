"""Build SAP_LLM's three components from a config and train them on a labelled set.

The tests and the rehearsal train the ``tiny`` size for seconds on a CPU, so the model gates pass for a real
reason (and fail for one with untrained weights). The larger sizes exist for throughput: ``large`` is the
checklist's 300M-parameter vision encoder, ``7b`` a 7B-parameter encoder of the language decoder's size.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from sap_llm_contract.taxonomy import APIS, DOCUMENT_TYPES, FIELDS, PO_SUBTYPES, ROUTES
from sap_llm_model.modeling import SapLlmConfig, SapLlmModel, build_tokenizer, tiny_encoder
from sap_llm_model.pipeline import (
    NO_SUBTYPE,
    TAGS,
    decoder_prompt,
    encode,
    reasoning_input,
    token_labels,
)

SIZES: dict[str, dict] = {
    "tiny": {},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
    "7b": {"hidden_size": 4096, "num_hidden_layers": 34, "num_attention_heads": 32, "intermediate_size": 16384},
}

# Field tagging is the harder task for the vision encoder, which also classifies: its loss counts double.
TOKEN_LOSS_WEIGHT = 2.0

HEADS: dict[str, tuple[dict, dict]] = {
    "vision_encoder": ({"document_type": list(DOCUMENT_TYPES), "po_subtype": [NO_SUBTYPE, *PO_SUBTYPES]},
                       {"field_tags": list(TAGS)}),
    "language_decoder": ({}, {"field_tags": list(TAGS)}),
    "reasoning_engine": ({"route": list(ROUTES), "api": list(APIS)}, {}),
}


def vocabulary_texts(documents: list[dict]) -> list[str]:
    """Everything a component reads: the documents, the decoder prompts and the reasoning inputs, plus every name
    in the taxonomy (so a type the training set lacks still has a token)."""
    names = [" ".join([*DOCUMENT_TYPES, *PO_SUBTYPES, NO_SUBTYPE, *FIELDS])]
    return names + [d["content"] for d in documents] + [
        reasoning_input(d["document_type"], d["po_subtype"], d["fields"]) for d in documents
    ]


def build_component(name: str, tokenizer, size: str = "tiny") -> SapLlmModel:
    """One component (its heads by ``HEADS``) of the given size, with random weights."""
    sequence, token = HEADS[name]
    encoder = {**tiny_encoder(len(tokenizer)), **SIZES[size]}
    return SapLlmModel(SapLlmConfig(encoder=encoder, sequence_heads=sequence, token_heads=token, component=name))


def build_components(tokenizer, size: str = "tiny") -> dict[str, SapLlmModel]:
    return {name: build_component(name, tokenizer, size) for name in HEADS}


def _batch(component: str, tokenizer, documents: list[dict]) -> tuple:
    texts = [d["content"] for d in documents]
    if component == "reasoning_engine":
        encoded = encode(tokenizer, [reasoning_input(d["document_type"], d["po_subtype"], d["fields"])
                                     for d in documents], None, torch.device("cpu"))
        return encoded, {"route": [ROUTES.index(d["route"]) for d in documents],
                         "api": [APIS.index(d["api"]) for d in documents]}
    prompts = None if component == "vision_encoder" else [decoder_prompt(d["document_type"], d["po_subtype"])
                                                          for d in documents]
    encoded = encode(tokenizer, texts, prompts, torch.device("cpu"))
    labels = {"field_tags": [token_labels(encoded.offsets[i], encoded.in_document[i], d["spans"])
                             for i, d in enumerate(documents)]}
    if component == "vision_encoder":
        labels["document_type"] = [list(DOCUMENT_TYPES).index(d["document_type"]) for d in documents]
        labels["po_subtype"] = [([NO_SUBTYPE, *PO_SUBTYPES]).index(d["po_subtype"] or NO_SUBTYPE) for d in documents]
    return encoded, labels


def _word_dropout(encoded, labels: dict, unk_id: int, rate: float = 0.1, value_rate: float = 0.5) -> torch.Tensor:
    """Some words read as unknown (field values more often), so values never seen in training (held-out parties)
    are still tagged from their context."""
    in_document = torch.tensor(encoded.in_document, dtype=torch.bool)
    rates = torch.full(encoded.input_ids.shape, rate)
    if "field_tags" in labels:
        rates[torch.tensor(labels["field_tags"]) > 0] = value_rate
    drop = (torch.rand(encoded.input_ids.shape) < rates) & in_document
    return encoded.input_ids.masked_fill(drop, unk_id)


def train_component(component: str, model: SapLlmModel, tokenizer, documents: list[dict], steps: int,
                    max_seconds: float, batch_size: int, seed: int) -> dict:
    """Cross-entropy over every head, AdamW with a short warm-up and a linear decay to a tenth of the rate; stops
    after ``steps`` or ``max_seconds``."""
    rng = random.Random(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1.5e-3)
    warmup = max(1, steps // 15)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min((step + 1) / warmup, max(0.1, 1 - (step - warmup) / max(steps - warmup, 1))))
    model.train()
    started, done, loss_value = time.monotonic(), 0, float("nan")
    while done < steps and time.monotonic() - started < max_seconds:
        encoded, labels = _batch(component, tokenizer, rng.sample(documents, min(batch_size, len(documents))))
        logits = model(_word_dropout(encoded, labels, tokenizer.unk_token_id), encoded.attention_mask)
        loss = sum(
            (TOKEN_LOSS_WEIGHT if name in model.config.token_heads else 1.0)
            * torch.nn.functional.cross_entropy(logits[name].reshape(-1, logits[name].shape[-1]),
                                                torch.tensor(values).reshape(-1), ignore_index=-100)
            for name, values in labels.items()
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        done, loss_value = done + 1, loss.item()
    model.eval()
    return {"steps": done, "seconds": round(time.monotonic() - started, 2), "final_loss": round(loss_value, 4)}


def _train_and_save(name: str, tokenizer, documents: list[dict], out: Path, options: dict) -> dict:
    """Build one component, train it and save it (with the shared tokenizer) under ``out / name``."""
    torch.set_num_threads(options["threads"])
    torch.manual_seed(options["seed"] + list(HEADS).index(name))
    model = build_component(name, tokenizer, options["size"])
    summary = train_component(name, model, tokenizer, documents, options["steps"], options["max_seconds"],
                              options["batch_size"], options["seed"])
    model.config.training = {"documents": len(documents), "size": options["size"], **summary}
    model.save_pretrained(out / name)
    tokenizer.save_pretrained(out / name)
    return summary


def train(documents: list[dict], out: Path, steps: int = 1500, max_seconds: float = 600.0, batch_size: int = 32,
          seed: int = 0, size: str = "tiny", workers: int = 1) -> dict:
    """Build, train (``steps`` = 0 leaves the weights random) and save the three components under ``out``.

    ``workers`` > 1 trains the components side by side in forked processes, the cores shared between them: the tiny
    size's steps are too small for a second thread to speed up (about 35 ms a step with one thread or two), so three
    single-threaded processes on two cores take about half the time of one after another. Each component's seed is
    ``seed`` plus its index, so the weights depend on ``workers`` only through the threads each process gets."""
    tokenizer = build_tokenizer(vocabulary_texts(documents))
    options = {"steps": steps, "max_seconds": max_seconds, "batch_size": batch_size, "seed": seed, "size": size,
               "threads": max(1, torch.get_num_threads() // workers)}
    if workers <= 1:
        summary = {name: _train_and_save(name, tokenizer, documents, out, options) for name in HEADS}
    else:
        # fork: nothing in this process has started torch's thread pools yet, and the children need no re-import
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {name: pool.submit(_train_and_save, name, tokenizer, documents, out, options)
                       for name in HEADS}
            summary = {name: future.result() for name, future in futures.items()}
    return {"kind": "train", "documents": len(documents), "components": summary}
