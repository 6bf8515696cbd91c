"""A small frame-text dual encoder: the embedded default's retriever (the coarse pass of the scan).

    enc = DualEncoder.from_pretrained("grounder/default_model/retriever")
    clips_vec = enc.embed_frames(clips)                 # uint8 [N, 2, H, W, 3] -> float32 [N, D], unit norm
    what = enc.embed_text(["the red cross enter from the left"])   # -> [Q, D], unit norm
    p = enc.presence(what @ clips_vec.T)                # P(a red cross is on screen): the index's curve
    q = enc.moment(clips, ["the red cross enter from the left"])   # [Q, N] P(the clip shows it entering there)

Why this shape (and not the VLM's own tower): a contrastive encoder learns to bind colour and shape
from every in-batch negative, where the tiny generative VLM stayed near-blind to shape within a CPU
budget (BENCHMARKS.md, "Embedded default model"). The image side is a small CNN over a short clip
(two frames 1 s apart stacked as channels, so it sees which way things move: a 4x4 patchify stem,
then 3x3 convolutions at 28x28 and 14x14; receptive field ~44 px, objects are 18-26 px in the
synthetic world's 112x112 frames) whose per-location features are max-pooled channel by channel:
a channel that fires for "a red cross here" keeps firing in the pooled vector whatever else is on
screen, so one vector per clip can say which things are present (what an inner-product FAISS index
needs). The text side is a 2-layer transformer over the default model's own tokenizer,
mean-pooled. Two heads share both trunks. "what" is trained on "is the named object on screen";
its pooled vector is what the per-video index keeps (the scan's candidate windows: recall).
"moment" is trained on "does the clip show what the text says happens" (entering from the bottom,
leaving; the answer to a multiple-choice question): it scores a text against every location of a
clip, whose features also carry the location's coordinates, and keeps the best (late interaction),
because which side an object crosses is a matter of where it is, which a pooled vector forgets.
It runs only on the few clips of the candidate windows (the scan's choice among closer looks) and
of the grounded moments (`agent.retrieval_answerer`). Both are trained with a pairwise sigmoid
loss (SigLIP's), so `presence` and `moment` are calibrated probabilities, which the scan combines
with the VLM's confidence.

The folder is HF-style: `config.json` (`model_type: groundqa_dual_encoder`), `model.safetensors`
(no pickle), `tokenizer.json` (a `tokenizers` file) and a model card `README.md`. It knows the
synthetic world only (its vocabulary and its look); real video wants a CLIP / SigLIP retriever
(`grounder.embedders`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grounder.errors import InputError, ModelError, one_line

MODEL_TYPE = "groundqa_dual_encoder"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"


@dataclass
class DualEncoderConfig:
    """Sizes of the two towers (defaults: the embedded default's, about 0.5 M parameters)."""

    image_size: int = 112  # frames are resized (squashed) to image_size x image_size
    # one embedding per short clip: frames at these offsets (s) from its time, stacked as channels,
    # so the encoder sees motion: "enters" and "leaves" differ by direction, not by one frame
    clip_offsets: list[float] = field(default_factory=lambda: [-0.5, 0.5])
    stem: int = 4  # patchify stem: stride and kernel of the first convolution
    channels: list[int] = field(default_factory=lambda: [32, 48, 96, 96])
    embed_dim: int = 128  # per head
    # Named embedding heads over one trunk: "what" (is the named thing on screen: finds the windows,
    # high recall) and "moment" (does the clip show what the text says it does, e.g. entering from the
    # bottom: ranks the closer looks). One sigmoid calibration each.
    heads: list[str] = field(default_factory=lambda: ["what", "moment"])
    # trained on "QUESTION OPTION" statements of multiple-choice questions (its "moment" head can
    # answer them: agent.retrieval_answerer); set by the trainer
    answers: bool = False
    # the words each slot of its training texts took ({"color": [...], "shape": [...], "scene": [...],
    # "side": [...]}): what a reader may probe for ("the {color} {shape}") when a question leaves an
    # attribute open (`agent.timeline`); set by the trainer, empty = unknown
    slots: dict[str, list[str]] = field(default_factory=dict)
    vocab_size: int = 2048
    text_hidden: int = 96
    text_layers: int = 2
    text_heads: int = 4
    max_text_tokens: int = 48
    pad_token_id: int = 0
    # the initial presence calibration, sigmoid(exp(logit_scale) * cos + logit_bias): SigLIP's start
    init_logit_scale: float = 2.302585  # log(10)
    init_logit_bias: float = -10.0

    def __post_init__(self) -> None:
        if not self.clip_offsets or sorted(self.clip_offsets) != list(self.clip_offsets):
            raise ModelError(f"dual encoder: clip_offsets must be ascending and non-empty, got {self.clip_offsets}")
        if not self.heads or len(set(self.heads)) != len(self.heads) or self.heads[0] != "what":
            raise ModelError(f"dual encoder: heads must be distinct names starting with 'what', got {self.heads}")
        if len(self.channels) != 4 or any(int(c) < 1 for c in self.channels):
            raise ModelError(f"dual encoder: channels must be 4 positive ints, got {self.channels}")
        for name in ("image_size", "stem", "embed_dim", "vocab_size", "text_hidden", "text_layers",
                     "text_heads", "max_text_tokens"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"dual encoder: {name} must be >= 1, got {getattr(self, name)}")
        if self.text_hidden % self.text_heads:
            raise ModelError("dual encoder: text_hidden must be a multiple of text_heads")

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": MODEL_TYPE, "architectures": ["GroundQADualEncoder"], **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DualEncoderConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names - {"model_type", "architectures", "training"})
        if unknown:
            raise ModelError(f"dual encoder config: unknown keys {unknown}")
        return cls(**{k: v for k, v in d.items() if k in names})


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class ImageTower(nn.Module):
    """Clips as stacked frames [B, 3K, S, S] -> per head, per-location features [B, D, S/8, S/8]
    (the "moment" head's also see the location's coordinates)."""

    def __init__(self, cfg: DualEncoderConfig) -> None:
        super().__init__()
        c0, c1, c2, c3 = (int(c) for c in cfg.channels)
        self.body = nn.Sequential(
            nn.Conv2d(3 * len(cfg.clip_offsets), c0, cfg.stem, cfg.stem), nn.ReLU(),
            _conv(c0, c1), _conv(c1, c2, stride=2), _conv(c2, c3),
        )
        self.proj = nn.ModuleDict({h: nn.Conv2d(c3 + (2 if h == "moment" else 0), cfg.embed_dim, 1)
                                   for h in cfg.heads})

    def forward(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.body(pixels)
        out = {}
        for h, p in self.proj.items():
            if h == "moment":
                b, _, gh, gw = x.shape
                ys = torch.linspace(-1, 1, gh, device=x.device).view(1, 1, gh, 1).expand(b, 1, gh, gw)
                xs = torch.linspace(-1, 1, gw, device=x.device).view(1, 1, 1, gw).expand(b, 1, gh, gw)
                out[h] = p(torch.cat([x, xs, ys], dim=1))
            else:
                out[h] = p(x)
        return out


class TextTower(nn.Module):
    """Token ids [B, T] (+ mask) -> [B, D]: a small pre-norm transformer, mean-pooled."""

    def __init__(self, cfg: DualEncoderConfig) -> None:
        super().__init__()
        h = cfg.text_hidden
        self.tokens = nn.Embedding(cfg.vocab_size, h)
        self.positions = nn.Embedding(cfg.max_text_tokens, h)
        layer = nn.TransformerEncoderLayer(h, cfg.text_heads, 2 * h, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(h)
        self.proj = nn.ModuleDict({name: nn.Linear(h, cfg.embed_dim) for name in cfg.heads})

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.tokens(ids) + self.positions(pos)[None]
        x = self.encoder(x, src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (self.norm(x) * m).sum(1) / m.sum(1).clamp(min=1.0)
        return {name: p(pooled) for name, p in self.proj.items()}


_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lower case, one space between words, no trailing '?' or '.': training and use agree."""
    return _SPACES.sub(" ", str(text).strip().lower()).rstrip(" ?.!")


class DualEncoder(nn.Module):
    """The two towers, the presence calibration, the tokenizer; see the module docstring."""

    def __init__(self, cfg: DualEncoderConfig, tokenizer: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.image = ImageTower(cfg)
        self.text = TextTower(cfg)
        n = len(cfg.heads)
        self.logit_scale = nn.Parameter(torch.full((n,), float(cfg.init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.full((n,), float(cfg.init_logit_bias)))
        self.tokenizer = tokenizer  # a tokenizers.Tokenizer

    @property
    def heads(self) -> tuple[str, ...]:
        return tuple(self.cfg.heads)

    def _head(self, head: str) -> int:
        if head not in self.cfg.heads:
            raise InputError(f"this retriever has no {head!r} head (it has {', '.join(self.cfg.heads)})")
        return self.cfg.heads.index(head)

    # -- inputs --------------------------------------------------------------------------
    @property
    def clip_offsets(self) -> tuple[float, ...]:
        return tuple(float(o) for o in self.cfg.clip_offsets)

    def pixels(self, frames: Any) -> torch.Tensor:
        """uint8 clips [N, K, H, W, 3] (K = len(clip_offsets); [N, H, W, 3] when K = 1), numpy or
        torch -> normalised float [N, 3K, S, S] (frames squashed to S x S, stacked as channels)."""
        x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
        k = len(self.cfg.clip_offsets)
        if x.ndim == 4 and k == 1:
            x = x[:, None]
        if x.ndim != 5 or x.shape[1] != k or x.shape[-1] != 3:
            raise InputError(f"clips must be [N, {k}, H, W, 3], got shape {tuple(x.shape)}")
        n, _, h, w, _ = x.shape
        x = x.to(self.logit_scale.device).reshape(n * k, h, w, 3).permute(0, 3, 1, 2).float()
        s = int(self.cfg.image_size)
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        return ((x / 255.0 - 0.5) / 0.25).reshape(n, 3 * k, s, s)

    def token_ids(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts -> (ids [B, T], mask [B, T]); each text normalised and cut to max_text_tokens."""
        if self.tokenizer is None:
            raise ModelError("this dual encoder has no tokenizer")
        n = int(self.cfg.max_text_tokens)
        enc = [self.tokenizer.encode(normalise_text(t), add_special_tokens=False).ids[:n] or
               [self.cfg.pad_token_id] for t in texts]
        width = max(len(e) for e in enc)
        ids = torch.full((len(enc), width), int(self.cfg.pad_token_id), dtype=torch.long)
        mask = torch.zeros((len(enc), width), dtype=torch.bool)
        for i, e in enumerate(enc):
            ids[i, : len(e)] = torch.tensor(e, dtype=torch.long)
            mask[i, : len(e)] = True
        dev = self.logit_scale.device
        return ids.to(dev), mask.to(dev)

    # -- towers (training works per head) -------------------------------------------------------
    def clip_features(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """[N, 3K, S, S] -> "what": unit vectors [N, D] (per-location features, max over locations);
        "moment": unit vectors per location [N, L, D]."""
        maps = self.image(pixels)
        out = {"what": F.normalize(maps["what"].flatten(2).amax(-1), dim=-1)}
        if "moment" in maps:
            out["moment"] = F.normalize(maps["moment"].flatten(2).transpose(1, 2), dim=-1)
        return out

    def text_features(self, ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {h: F.normalize(v, dim=-1) for h, v in self.text(ids, mask).items()}

    @staticmethod
    def match(text: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        """Cosine of texts [T, D] with clips: pooled [N, D] -> [T, N]; per location [N, L, D] ->
        the best location's [T, N] (late interaction)."""
        if clip.ndim == 2:
            return text @ clip.T
        return torch.einsum("td,nld->tnl", text, clip).amax(-1)

    def logits(self, cos: torch.Tensor, head: str = "what") -> torch.Tensor:
        i = self._head(head)
        return self.logit_scale[i].exp() * cos + self.logit_bias[i]

    # -- the embedder interface (numpy in, numpy out; no gradients) ----------------------------
    @property
    def dim(self) -> int:
        return int(self.cfg.embed_dim)

    @torch.inference_mode()
    def embed_frames(self, frames: Any, batch_size: int = 256) -> np.ndarray:
        """Clips -> the "what" head's unit vectors [N, D] (what the per-video index keeps)."""
        if len(frames) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = [self.clip_features(self.pixels(frames[i:i + batch_size]))["what"].float().cpu().numpy()
               for i in range(0, len(frames), batch_size)]
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    @torch.inference_mode()
    def embed_text(self, texts: list[str], head: str = "what") -> np.ndarray:
        """Texts -> unit vectors [T, D] of `head` (the "what" head's match `embed_frames`)."""
        self._head(head)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        ids, mask = self.token_ids(list(texts))
        return np.ascontiguousarray(self.text_features(ids, mask)[head].float().cpu().numpy(), dtype=np.float32)

    @torch.inference_mode()
    def moment(self, frames: Any, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """P(the clip shows what the text says happens) [T, N], from the "moment" head."""
        i = self._head("moment")
        if len(frames) == 0 or not texts:
            return np.zeros((len(texts), len(frames)), np.float64)
        ids, mask = self.token_ids(list(texts))
        t = self.text_features(ids, mask)["moment"]
        out = [self.match(t, self.clip_features(self.pixels(frames[k:k + batch_size]))["moment"])
               for k in range(0, len(frames), batch_size)]
        z = self.logit_scale[i].exp() * torch.cat(out, dim=1) + self.logit_bias[i]
        return torch.sigmoid(z).double().cpu().numpy()

    @torch.inference_mode()
    def locate(self, frames: Any, texts: list[str], batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """Where the named thing is: (P(on screen) [T, N] as `presence` of the pooled "what" vector,
        centre [T, N, 2] = (x, y) in 0..1 of the location whose "what" feature matches the text best).
        The pooled vector is a channel-wise max over locations, so the location that agrees most
        with the text is where the channels that make the match fire."""
        t_n, n = len(texts), len(frames)
        if n == 0 or not texts:
            return np.zeros((t_n, n)), np.zeros((t_n, n, 2))
        text = torch.as_tensor(self.embed_text(list(texts)), device=self.logit_scale.device)
        cos, xy = [], []
        for k in range(0, n, batch_size):
            maps = self.image(self.pixels(frames[k:k + batch_size]))["what"]  # [B, D, gh, gw]
            _, _, gh, gw = maps.shape
            cos.append(text @ F.normalize(maps.flatten(2).amax(-1), dim=-1).T)
            best = torch.einsum("td,bdl->tbl", text, maps.flatten(2)).argmax(-1)  # [T, B]
            xy.append(torch.stack([((best % gw).float() + 0.5) / gw, ((best // gw).float() + 0.5) / gh], -1))
        return self.presence(torch.cat(cos, 1).cpu().numpy()), torch.cat(xy, 1).cpu().numpy().astype(np.float64)

    def presence(self, cos: Any, head: str = "what") -> np.ndarray:
        """A "what" cosine -> P(the named thing is on screen): the calibration trained with the towers."""
        i = self._head(head)
        scale = float(self.logit_scale[i].detach().exp())
        bias = float(self.logit_bias[i].detach())
        z = scale * np.asarray(cos, dtype=np.float64) + bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    # -- files ---------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """config.json (+ `extra` under "training"), model.safetensors, tokenizer.json."""
        from safetensors.torch import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg.to_dict()
        if extra:
            cfg["training"] = extra
        (out / CONFIG_NAME).write_text(json.dumps(cfg, indent=1) + "\n")
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
        if self.tokenizer is not None:
            self.tokenizer.save(str(out / TOKENIZER_NAME))
        return out

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], device: str = "cpu") -> DualEncoder:
        """Load a folder written by `save_pretrained`; anything else is a one-line ModelError."""
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        p = Path(folder).expanduser()
        cfg_path = p / CONFIG_NAME
        if not cfg_path.is_file():
            raise ModelError(f"not a retriever folder (no config.json): {folder}")
        try:
            raw = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{cfg_path}: unreadable config ({exc})") from None
        if not isinstance(raw, dict) or raw.get("model_type") != MODEL_TYPE:
            raise ModelError(f"{folder}: not a groundqa dual encoder (model_type "
                             f"{raw.get('model_type') if isinstance(raw, dict) else None!r})")
        cfg = DualEncoderConfig.from_dict(raw)
        for name in (WEIGHTS_NAME, TOKENIZER_NAME):
            if not (p / name).is_file():
                raise ModelError(f"{folder}: retriever folder without {name}")
        try:
            tokenizer = Tokenizer.from_file(str(p / TOKENIZER_NAME))
            model = cls(cfg, tokenizer)
            model.load_state_dict(load_file(str(p / WEIGHTS_NAME)), strict=True)
        except Exception as exc:  # noqa: BLE001 -- a broken or mismatched file is the folder's fault
            raise ModelError(f"cannot load retriever {folder}: {one_line(exc)}") from None
        return model.to(device).eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
