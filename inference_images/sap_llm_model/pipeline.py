"""The SAP_LLM pipeline over a model artifacts directory with its three components:

- ``vision_encoder``: document type and PO subtype (sequence heads) and field tags (token head) from the document;
- ``language_decoder``: the ADC fields, tagged again with the encoder's classification as a prompt, normalised to
  typed values; it also re-decodes fields the ADC schema rejected (self-correction);
- ``reasoning_engine``: route and S/4HANA API (sequence heads) from the structured ADC.

The reference server and the validator both load models through ``DocumentPipeline``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from sap_llm_contract.schema import normalise_field
from sap_llm_contract.taxonomy import FIELDS

from sap_llm_model.modeling import SapLlmModel, load_component, pick_device, pick_dtype

COMPONENTS = ("vision_encoder", "language_decoder", "reasoning_engine")
TAGS: tuple[str, ...] = ("O", *(f"{prefix}-{field}" for field in FIELDS for prefix in ("B", "I")))
NO_SUBTYPE = "none"


def decoder_prompt(document_type: str, po_subtype: str | None) -> str:
    return f"{document_type} {po_subtype or NO_SUBTYPE}"


def reasoning_input(document_type: str, po_subtype: str | None, fields: dict) -> str:
    """The structured ADC as the reasoning engine reads it: the classification and which fields were found."""
    return f"{document_type} {po_subtype or NO_SUBTYPE} " + " ".join(sorted(fields))


def token_labels(offsets: list[tuple[int, int]], in_document: list[bool], spans: dict[str, list[int]]) -> list[int]:
    """BIO tag ids for each token from the fields' character spans; -100 for tokens outside the document."""
    labels = []
    for (start, end), inside in zip(offsets, in_document, strict=True):
        if not inside or start == end:
            labels.append(-100)
            continue
        tag = "O"
        for field, (span_start, span_end) in spans.items():
            if span_start <= start and end <= span_end:
                tag = f"{'B' if start == span_start else 'I'}-{field}"
        labels.append(TAGS.index(tag))
    return labels


def decode_fields(text: str, offsets: list[tuple[int, int]], in_document: list[bool],
                  tag_ids: list[int]) -> dict[str, str]:
    """Field -> the text of its first tagged span (B- then I- of the same field)."""
    fields: dict[str, tuple[int, int]] = {}
    current = None
    for (start, end), inside, tag_id in zip(offsets, in_document, tag_ids, strict=True):
        tag = TAGS[tag_id] if inside and start != end else "O"
        if tag.startswith("B-") and tag[2:] not in fields:
            current = tag[2:]
            fields[current] = (start, end)
        elif tag.startswith("I-") and tag[2:] == current:
            fields[current] = (fields[current][0], end)
        else:
            current = None
    return {field: text[start:end] for field, (start, end) in fields.items()}


@dataclass
class Encoded:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    offsets: list[list[tuple[int, int]]]
    in_document: list[list[bool]]


def encode(tokenizer, texts: list[str], prompts: list[str] | None, device: torch.device) -> Encoded:
    """Tokenise documents (after an optional prompt); remember which tokens belong to the document text."""
    if prompts is None:
        batch = tokenizer(texts, padding=True, truncation=True, return_offsets_mapping=True, return_tensors="pt")
    else:
        batch = tokenizer(prompts, texts, padding=True, truncation="only_second", return_offsets_mapping=True,
                          return_tensors="pt")
    document_sequence = 0 if prompts is None else 1
    in_document = [[sid == document_sequence for sid in batch.sequence_ids(i)] for i in range(len(texts))]
    return Encoded(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                   [list(map(tuple, row)) for row in batch["offset_mapping"].tolist()], in_document)


class DocumentPipeline:
    """The three components (model, tokenizer) on one device."""

    def __init__(self, components: dict[str, tuple[SapLlmModel, object]], device: torch.device,
                 dtype: torch.dtype) -> None:
        missing = [name for name in COMPONENTS if name not in components]
        if missing:
            raise ValueError(f"components: missing {missing}")
        self.components, self.device, self.dtype = components, device, dtype

    @classmethod
    def load(cls, artifacts: Path, device: str = "auto", dtype: str = "auto") -> DocumentPipeline:
        """The components saved under ``artifacts`` (one directory each), loaded offline."""
        chosen = pick_device(device)
        chosen_dtype = pick_dtype(chosen, dtype)
        return cls({name: load_component(Path(artifacts) / name, chosen, chosen_dtype) for name in COMPONENTS},
                   chosen, chosen_dtype)

    def _run(self, component: str, texts: list[str], prompts: list[str] | None = None):
        model, tokenizer = self.components[component]
        encoded = encode(tokenizer, texts, prompts, self.device)
        with torch.inference_mode():
            logits = model(encoded.input_ids, encoded.attention_mask)
        return model.config, encoded, {name: value.float() for name, value in logits.items()}

    def classify(self, texts: list[str]) -> list[dict]:
        """Vision encoder: type, subtype, confidence and the fields it tags, per document."""
        config, encoded, logits = self._run("vision_encoder", texts)
        type_probs = logits["document_type"].softmax(-1)
        subtypes = logits["po_subtype"].argmax(-1).tolist()
        tags = logits["field_tags"].argmax(-1).tolist()
        results = []
        for i, text in enumerate(texts):
            confidence, type_index = type_probs[i].max(-1)
            document_type = config.sequence_heads["document_type"][int(type_index)]
            subtype = config.sequence_heads["po_subtype"][subtypes[i]]
            results.append({
                "document_type": document_type,
                "po_subtype": subtype if document_type == "purchase_order" and subtype != NO_SUBTYPE else None,
                "confidence": round(float(confidence), 4),
                "fields": decode_fields(text, encoded.offsets[i], encoded.in_document[i], tags[i]),
            })
        return results

    def decode_adc_fields(self, texts: list[str], classified: list[dict]) -> tuple[list[dict], torch.Tensor, Encoded]:
        """Language decoder: the typed ADC fields of each document, prompted with its classification."""
        prompts = [decoder_prompt(c["document_type"], c["po_subtype"]) for c in classified]
        _, encoded, logits = self._run("language_decoder", texts, prompts)
        tags = logits["field_tags"].argmax(-1).tolist()
        fields = [
            {name: normalise_field(name, raw)
             for name, raw in decode_fields(text, encoded.offsets[i], encoded.in_document[i], tags[i]).items()}
            for i, text in enumerate(texts)
        ]
        return fields, logits["field_tags"].softmax(-1), encoded

    def reason(self, structured: list[tuple[str, str | None, dict]]) -> list[tuple[str, str]]:
        """Reasoning engine: (route, api) for each (document type, PO subtype, fields)."""
        config, _, logits = self._run("reasoning_engine", [reasoning_input(*s) for s in structured])
        routes, apis = logits["route"].argmax(-1).tolist(), logits["api"].argmax(-1).tolist()
        return [(config.sequence_heads["route"][r], config.sequence_heads["api"][a]) for r, a in zip(routes, apis,
                                                                                                     strict=True)]

    def run(self, texts: list[str]) -> tuple[list[dict], list[dict]]:
        """All three components: the vision encoder's output and the ADC output (what the service returns) of each
        document."""
        classified = self.classify(texts)
        fields, _, _ = self.decode_adc_fields(texts, classified)
        decisions = self.reason([(c["document_type"], c["po_subtype"], f) for c, f in zip(classified, fields,
                                                                                            strict=True)])
        outputs = [
            {"document_type": c["document_type"], "po_subtype": c["po_subtype"], "fields": f, "route": route,
             "api": api}
            for c, f, (route, api) in zip(classified, fields, decisions, strict=True)
        ]
        return classified, outputs

    def process(self, texts: list[str]) -> list[dict]:
        """The ADC output of each document, with the encoder's confidence."""
        classified, outputs = self.run(texts)
        return [{**output, "confidence": c["confidence"]} for c, output in zip(classified, outputs, strict=True)]

    def redecode(self, text: str, classification: dict, fields: list[str]) -> dict[str, object]:
        """Self-correction: the decoder's best span for each field the schema rejected, from one decoder pass, read
        from the tag probabilities (the most likely start, then as long as the continuation stays the likeliest
        tag). A field with no plausible start is left out."""
        _, probs, encoded = self.decode_adc_fields([text], [classification])
        allowed = torch.tensor(encoded.in_document[0], device=probs.device)
        offsets, likeliest = encoded.offsets[0], probs[0].argmax(-1).tolist()
        found = {}
        for field in fields:
            scores = probs[0, :, TAGS.index(f"B-{field}")].masked_fill(~allowed, -1.0)
            start = end = int(scores.argmax())
            if scores[start] <= 0:
                continue
            while end + 1 < len(offsets) and allowed[end + 1] and likeliest[end + 1] == TAGS.index(f"I-{field}"):
                end += 1
            found[field] = normalise_field(field, text[offsets[start][0]:offsets[end][1]])
        return found

    @property
    def parameters(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in model.parameters()) for name, (model, _) in self.components.items()}
