"""SAP_LLM's models as transformers models: a BERT encoder with named heads.

Each component (vision encoder, language decoder, reasoning engine) is one ``SapLlmModel``: sequence heads
classify the whole input (document type, PO subtype, route, API), a token head tags every word (BIO tags over the
ADC fields). Saved and loaded with ``save_pretrained`` / ``from_pretrained`` (safetensors), with its word-level
tokenizer beside it; loading never reaches a hub.
"""

from __future__ import annotations

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
from torch import nn
from transformers import BertConfig, BertModel, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
MAX_LENGTH = 160


class SapLlmConfig(PretrainedConfig):
    """The encoder's size plus the heads: ``sequence_heads`` and ``token_heads`` map a head name to its labels."""

    model_type = "sap_llm"

    def __init__(self, encoder: dict | None = None, sequence_heads: dict | None = None,
                 token_heads: dict | None = None, component: str = "", training: dict | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder or {}
        self.sequence_heads = sequence_heads or {}
        self.token_heads = token_heads or {}
        self.component = component
        self.training = training or {}


class SapLlmModel(PreTrainedModel):
    config_class = SapLlmConfig
    base_model_prefix = "encoder"

    def __init__(self, config: SapLlmConfig) -> None:
        super().__init__(config)
        self.encoder = BertModel(BertConfig(**config.encoder), add_pooling_layer=False)
        hidden = self.encoder.config.hidden_size
        self.sequence_heads = nn.ModuleDict({n: nn.Linear(hidden, len(v)) for n, v in config.sequence_heads.items()})
        self.token_heads = nn.ModuleDict({n: nn.Linear(hidden, len(v)) for n, v in config.token_heads.items()})
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per head: ``[batch, labels]`` for sequence heads, ``[batch, tokens, labels]`` for token heads."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = {name: head(hidden[:, 0]) for name, head in self.sequence_heads.items()}
        logits.update({name: head(hidden) for name, head in self.token_heads.items()})
        return logits


def build_tokenizer(texts: list[str], min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """A word-level tokenizer learnt from ``texts``: lower case, every digit read as 0 (a number's shape matters,
    not its value), words and punctuation split apart; offsets still point into the original text."""
    from tokenizers import trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex(r"\d"), "0")])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(
        texts, trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS), min_frequency=min_frequency)
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        model_max_length=MAX_LENGTH,
    )


def tiny_encoder(vocab_size: int) -> dict:
    """The encoder size the tests and the rehearsal train in seconds on a CPU."""
    return {"vocab_size": vocab_size, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 128, "max_position_embeddings": MAX_LENGTH, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0}


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_dtype(device: torch.device, requested: str = "auto") -> torch.dtype:
    """bf16 on a GPU that has it, else fp16 on a GPU, fp32 on the CPU (unless asked otherwise)."""
    if requested != "auto":
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_component(path, device: torch.device, dtype: torch.dtype) -> tuple[SapLlmModel, PreTrainedTokenizerFast]:
    """One component (model + tokenizer) from its directory, offline, in eval mode on ``device``."""
    model = SapLlmModel.from_pretrained(path, local_files_only=True, dtype=dtype).to(device).eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)
    return model, tokenizer
