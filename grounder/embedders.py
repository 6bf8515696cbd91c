"""Frame-text embedders: the one interface the scan's retrieval pass talks to.

    from grounder.embedders import load_embedder

    emb = load_embedder("grounder/default_model/retriever")     # ours, or a CLIP / SigLIP folder or name
    f = emb.embed_frames(frames)        # uint8 [N, H, W, 3] -> float32 [N, D], unit norm
    q = emb.embed_text(["a red cross"])  # -> float32 [Q, D], unit norm
    cos = q @ f.T                        # cosine scores (what the FAISS inner-product index returns)
    emb.presence(cos)                    # P(on screen) where the model was trained for it, else None
    emb.moment(clips, ["..."])           # [Q, N] P(the clip shows what the text says happens): ours only

Implementations:
- `DualEncoderEmbedder`: the embedded default's own small dual encoder (`grounder.dual_encoder`);
  knows the synthetic world only.
- `TransformersEmbedder`: a CLIP or SigLIP checkpoint through transformers' `AutoModel` +
  `AutoProcessor` (`get_image_features` / `get_text_features`), no remote code. SigLIP was
  trained with a sigmoid loss, so its `presence` is `sigmoid(scale * cos + bias)`; CLIP's is None
  (the scan then ranks by cosine within the video).
- `SentenceTransformersEmbedder`: anything sentence-transformers loads that embeds images and
  texts (its CLIP wrapper, or a CLIPModel folder it wraps itself).

Every embedder has `name`, `fingerprint` (what the per-video index cache is keyed on), `dim`,
`heads` (("what",); ours also has "moment": does the clip show the text's event, not only its
object, scored by `moment(clips, texts)` on the few clips that matter instead of through the index),
`clip_offsets` (one embedding per frame: `(0.0,)`; per short clip of frames at these offsets, in
seconds, from its time: our dual encoder's `(-0.5, 0.5)`, so it sees which way things move; then
`embed_frames` takes uint8 [N, K, H, W, 3]), and counters `images_embedded` / `texts_embedded`
(tests check that a cached index embeds nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from grounder.errors import ModelError, one_line
from grounder.fingerprint import folder_fingerprint as model_fingerprint

__all__ = [
    "DualEncoderEmbedder",
    "FrameTextEmbedder",
    "SentenceTransformersEmbedder",
    "TransformersEmbedder",
    "load_embedder",
    "model_fingerprint",
]


@runtime_checkable
class FrameTextEmbedder(Protocol):
    name: str
    fingerprint: str
    images_embedded: int
    texts_embedded: int
    clip_offsets: tuple[float, ...]
    heads: tuple[str, ...]

    @property
    def dim(self) -> int: ...

    def embed_frames(self, frames: np.ndarray) -> np.ndarray: ...

    def embed_text(self, queries: Sequence[str]) -> np.ndarray: ...

    def presence(self, cos: Any) -> np.ndarray | None: ...




def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12))


def _check(out: np.ndarray, n: int, name: str) -> np.ndarray:
    if out.ndim != 2 or out.shape[0] != n:
        raise ModelError(f"retriever {name} returned embeddings of shape {out.shape}, expected ({n}, D)")
    return out


class _Counting:
    """Shared bookkeeping: names, counters, the `dim` probe."""

    name: str
    fingerprint: str
    images_embedded = 0
    texts_embedded = 0
    clip_offsets: tuple[float, ...] = (0.0,)
    heads: tuple[str, ...] = ("what",)

    @property
    def dim(self) -> int:
        if not hasattr(self, "_dim"):
            self._dim = int(self._texts(["a"]).shape[1])
        return self._dim

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, 3] RGB (clips: [N, K, H, W, 3]) -> float32 [N, D], unit norm."""
        if len(frames) == 0:
            return np.zeros((0, self.dim), np.float32)
        self.images_embedded += len(frames)
        return _check(_unit(self._frames(np.asarray(frames, dtype=np.uint8))), len(frames), self.name)

    def embed_text(self, queries: Sequence[str]) -> np.ndarray:
        """strings -> float32 [Q, D], unit norm."""
        queries = [str(q) for q in queries]
        if not queries:
            return np.zeros((0, self.dim), np.float32)
        self.texts_embedded += len(queries)
        return _check(_unit(self._texts(queries)), len(queries), self.name)

    def presence(self, cos: Any) -> np.ndarray | None:
        return None

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _texts(self, queries: list[str]) -> np.ndarray:
        raise NotImplementedError


class DualEncoderEmbedder(_Counting):
    """The embedded default's dual encoder (`grounder.dual_encoder.DualEncoder`)."""

    def __init__(self, model: Any, name: str, fingerprint: str) -> None:
        self.model = model
        self.name = name
        self.fingerprint = fingerprint
        self.clip_offsets = model.clip_offsets
        self.heads = model.heads
        self.slots = {k: list(v) for k, v in (model.cfg.slots or {}).items()}  # words it was trained on

    @classmethod
    def load(cls, folder: str | os.PathLike[str], device: str = "cpu") -> DualEncoderEmbedder:
        from grounder.dual_encoder import DualEncoder

        p = Path(folder).expanduser()
        model = DualEncoder.from_pretrained(p, device=device)
        return cls(model, p.resolve().name if p.name != "retriever" else f"{p.resolve().parent.name}/retriever",
                   model_fingerprint(p))

    @property
    def dim(self) -> int:
        return self.model.dim

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        return self.model.embed_frames(frames)

    def _texts(self, queries: list[str]) -> np.ndarray:
        return self.model.embed_text(queries)

    def presence(self, cos: Any) -> np.ndarray:
        return self.model.presence(cos)

    def moment(self, frames: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """[T, N] P(the clip shows what the text says happens) (the "moment" head)."""
        if "moment" not in self.heads:
            raise ModelError(f"retriever {self.name} has no moment head")
        self.images_embedded += len(frames)
        self.texts_embedded += len(texts)
        return self.model.moment(np.asarray(frames, dtype=np.uint8), [str(t) for t in texts])

    def locate(self, frames: np.ndarray, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(P(on screen) [T, N], centre (x, y) in 0..1 [T, N, 2]) of each named thing in each clip."""
        self.images_embedded += len(frames)
        self.texts_embedded += len(texts)
        return self.model.locate(np.asarray(frames, dtype=np.uint8), [str(t) for t in texts])


class TransformersEmbedder(_Counting):
    """A CLIP / SigLIP (/ SigLIP 2) checkpoint through transformers' Auto classes."""

    def __init__(self, model: Any, processor: Any, name: str, fingerprint: str, device: str = "cpu",
                 batch_size: int = 32) -> None:
        self.model = model
        self.processor = processor
        self.name = name
        self.fingerprint = fingerprint
        self.device = device
        self.batch_size = batch_size
        self.model_type = str(getattr(model.config, "model_type", ""))

    @classmethod
    def load(cls, where: str, device: str = "cpu") -> TransformersEmbedder:
        from transformers import AutoConfig, AutoModel, AutoProcessor

        try:
            config = AutoConfig.from_pretrained(where, trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001 -- a missing folder, bad config or offline hub name
            raise ModelError(f"cannot load retriever {where!r}: {one_line(exc, typed=True)}") from None
        try:  # the class AutoModel would build: it must embed images and texts apart (a dual encoder)
            cls_ = AutoModel._model_mapping[type(config)]
        except (KeyError, AttributeError):
            cls_ = None
        if cls_ is None or not (hasattr(cls_, "get_image_features") and hasattr(cls_, "get_text_features")):
            raise ModelError(f"retriever {where!r} is not an image-text dual encoder (model_type "
                             f"{getattr(config, 'model_type', None)!r}; a CLIP or SigLIP checkpoint is needed)")
        try:
            model = AutoModel.from_pretrained(where, trust_remote_code=False)
            processor = AutoProcessor.from_pretrained(where, trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001 -- broken weights or processor files
            raise ModelError(f"cannot load retriever {where!r}: {one_line(exc, typed=True)}") from None
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            raise ModelError(f"retriever {where!r} ({type(model).__name__}) cannot embed both images and texts")
        model.to(device).eval()
        local = Path(where).expanduser()
        fp = model_fingerprint(local) if local.is_dir() else hashlib.sha256(
            json.dumps(config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()
        return cls(model, processor, local.resolve().name if local.is_dir() else where, fp, device)

    @staticmethod
    def _pooled(out: Any) -> Any:
        return getattr(out, "pooler_output", None) if not hasattr(out, "shape") else out

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(frames), self.batch_size):
            batch = [f for f in frames[i:i + self.batch_size]]
            inputs = self.processor(images=batch, return_tensors="pt")
            with torch.inference_mode():
                feats = self._pooled(self.model.get_image_features(
                    pixel_values=inputs["pixel_values"].to(self.device)))
            out.append(feats.float().cpu().numpy())
        return np.concatenate(out)

    def _texts(self, queries: list[str]) -> np.ndarray:
        import torch

        # SigLIP was trained on texts padded to max_length; CLIP pads to the longest
        padding = "max_length" if self.model_type.startswith("siglip") else True
        inputs = self.processor(text=queries, padding=padding, truncation=True, return_tensors="pt")
        kwargs = {"input_ids": inputs["input_ids"].to(self.device)}
        if "attention_mask" in inputs and not self.model_type.startswith("siglip"):
            kwargs["attention_mask"] = inputs["attention_mask"].to(self.device)
        with torch.inference_mode():
            feats = self._pooled(self.model.get_text_features(**kwargs))
        return feats.float().cpu().numpy()

    def presence(self, cos: Any) -> np.ndarray | None:
        bias = getattr(self.model, "logit_bias", None)
        scale = getattr(self.model, "logit_scale", None)
        if bias is None or scale is None:  # CLIP: a softmax over texts, no calibrated presence
            return None
        z = float(scale.detach().exp()) * np.asarray(cos, dtype=np.float64) + float(bias.detach())
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


class SentenceTransformersEmbedder(_Counting):
    """A sentence-transformers model that embeds images and texts (e.g. its CLIP wrapper)."""

    def __init__(self, model: Any, name: str, fingerprint: str, batch_size: int = 32) -> None:
        self.model = model
        self.name = name
        self.fingerprint = fingerprint
        self.batch_size = batch_size

    @classmethod
    def load(cls, folder: str | os.PathLike[str], device: str = "cpu", batch_size: int = 32) -> SentenceTransformersEmbedder:
        p = Path(folder).expanduser()
        if not p.is_dir():
            raise ModelError(f"retrieval model folder not found: {folder}")
        if not (p / "config.json").is_file() and not (p / "modules.json").is_file():
            raise ModelError(f"not a model folder (no config.json or modules.json): {folder}")
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(p), device=device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 -- any loading failure is the folder's fault
            raise ModelError(f"cannot load retrieval model {folder}: {one_line(exc, typed=True)}") from None
        supports = getattr(model, "supports", None)
        for modality in ("image", "text"):
            if supports is not None and not supports(modality):
                raise ModelError(f"retrieval model {folder} cannot embed {modality}s "
                                 "(an image-text model such as CLIP is needed)")
        return cls(model, p.resolve().name, model_fingerprint(p), batch_size=batch_size)

    def _encode(self, items: list[Any]) -> np.ndarray:
        return np.asarray(self.model.encode(items, batch_size=self.batch_size, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        from PIL import Image

        return self._encode([Image.fromarray(f) for f in frames])

    def _texts(self, queries: list[str]) -> np.ndarray:
        return self._encode(queries)


def load_embedder(path_or_name: str | os.PathLike[str], device: str = "cpu") -> FrameTextEmbedder:
    """A retriever from a folder or a hub name, by what the folder holds:

    - `config.json` with `model_type: groundqa_dual_encoder` -> `DualEncoderEmbedder`;
    - `modules.json` (a sentence-transformers folder) -> `SentenceTransformersEmbedder`;
    - any other `config.json`, or a hub name -> `TransformersEmbedder` (CLIP / SigLIP).
    Anything unusable is a one-line `ModelError` before any video is read.
    """
    where = str(path_or_name)
    local = Path(where).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelError(f"retriever must be a model folder, got a file: {where}")
        cfg = local / "config.json"
        model_type = None
        if cfg.is_file():
            try:
                model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
            except (OSError, ValueError, AttributeError) as exc:
                raise ModelError(f"{cfg}: unreadable config ({exc})") from None
        if model_type == "groundqa_dual_encoder":
            return DualEncoderEmbedder.load(local, device)
        if (local / "modules.json").is_file():
            return SentenceTransformersEmbedder.load(local, device)
        if not cfg.is_file():
            raise ModelError(f"not a retriever folder (no config.json or modules.json): {where}")
        return TransformersEmbedder.load(str(local), device)
    if where.startswith((".", "/", "~")) or where.count("/") > 1:  # a path, not an "org/name"
        raise ModelError(f"retriever folder not found: {where}")
    return TransformersEmbedder.load(where, device)
