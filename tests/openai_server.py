"""A small OpenAI-compatible chat-completions server for the `openai` backend's tests.

THIS IS OUR TEST STAND-IN, NOT vLLM. It serves a (tiny) Qwen-VL model folder with plain
transformers on the CPU, for real: it decodes the `image_url` data URIs it receives, builds the
model inputs with the model's own chat template and processor (one image per part, text parts
kept in place), generates greedily, and answers with a `chat.completion` object that carries
`usage` and, when asked, per-token `logprobs` with `top_logprobs`, as vLLM does.
`transformers serve` was tried first: it serves a local folder offline and accepts the same
image content, but ignores `logprobs` / `top_logprobs`, so it cannot exercise the confidence.

Besides the served model it answers two kinds of model names, for tests (`GET /v1/models` lists
the served one and those given with `--list`):
  `script:<text>`  returns <text> (tokenized by the served tokenizer) with synthetic logprobs:
                   the first token after `<answer>` gets top alternatives with P=0.6 on that
                   token, 0.3 on "not" and 0.1 on "x"; every other token P=1.
  `nolp:<text>`     the same, but never any logprobs (what `transformers serve` does).
  `reason:<text>`   the same, but the `<think>...</think>` part goes to the message's
                   `reasoning_content` and only the rest to `content`, as vLLM's reasoning parsers do.
  anything else not served -> HTTP 404 with an OpenAI-style error body.

Every route is also served under `/broken-models/`, where `GET /v1/models` answers HTTP 500 (what
`transformers serve` does without a hub cache) and chat completions work as above.

`--delay S` makes every chat completion wait S seconds (asynchronously: requests overlap) before
answering, as a remote model would; the throughput benchmark of `eval run --concurrency` uses it.

Every request is appended as one JSON line to `--log` (model, number of images, their sizes,
the text parts in order, max_tokens, logprobs, top_logprobs), so tests can check what reached
the server.

    python tests/openai_server.py MODEL_DIR --port 8011 --name tiny --log requests.jsonl
"""

# No `from __future__ import annotations`: FastAPI must see the real `Request` annotation.
import argparse
import asyncio
import base64
import io
import json
import math
import threading
import time
import uuid
from typing import Any


def build_app(model_dir: str, name: str, log_path: str | None, listed: tuple[str, ...] = (),
              delay: float = 0.0) -> Any:
    import torch
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    tokenizer = processor.tokenizer
    lock = threading.Lock()
    app = FastAPI()

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                       "code": status}}, status_code=status)

    def log(entry: dict[str, Any]) -> None:
        if log_path:
            with lock, open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def decode_image(url: str) -> Any:
        head, _, data = url.partition(",")
        if not head.startswith("data:image/") or ";base64" not in head:
            raise ValueError("only data:image/...;base64 URIs are supported")
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")

    def entry(token_id: int | None, text: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
        return {"token": text, "logprob": logprob, "bytes": list(text.encode()),
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0,
                                            "owned_by": "groundqa-test-stand-in"} for n in (name, *listed)]}

    @app.get("/broken-models/v1/models")
    def broken_models() -> Any:
        return error(500, "cannot list models: no hub cache")

    @app.post("/v1/chat/completions")
    @app.post("/broken-models/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        model_name = str(body.get("model", ""))
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        want_logprobs = bool(body.get("logprobs"))
        top_n = int(body.get("top_logprobs") or 0)
        messages, images, texts, sizes = [], [], [], []
        try:
            for m in body["messages"]:
                content = m["content"]
                if isinstance(content, str):
                    content = [{"type": "text", "text": content}]
                parts = []
                for p in content:
                    if p.get("type") == "text":
                        parts.append({"type": "text", "text": p["text"]})
                        texts.append(p["text"])
                    elif p.get("type") == "image_url":
                        image = decode_image(p["image_url"]["url"])
                        images.append(image)
                        sizes.append(list(image.size))
                        parts.append({"type": "image"})
                    else:
                        return error(400, f"content type {p.get('type')!r} is not supported by the stand-in")
                messages.append({"role": m["role"], "content": parts})
        except (KeyError, TypeError, ValueError) as exc:
            return error(400, f"bad request: {exc}")
        log({"model": model_name, "n_images": len(images), "image_sizes": sizes, "texts": texts,
             "max_tokens": max_tokens, "logprobs": want_logprobs, "top_logprobs": top_n})
        if delay > 0:  # a remote model's latency, without blocking other requests (benchmarks)
            await asyncio.sleep(delay)

        prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[prompt], images=images or None, return_tensors="pt")
        prompt_tokens = int(inputs["input_ids"].shape[1])
        logprobs: list[dict[str, Any]] = []
        reasoning = None
        if model_name.startswith("nolp:"):  # a server that ignores `logprobs` (transformers serve)
            want_logprobs = False
            model_name_body = "script:" + model_name.partition(":")[2]
        else:
            model_name_body = model_name
        if model_name_body.startswith(("script:", "reason:")):
            text = model_name_body.partition(":")[2]
            ids = tokenizer.encode(text, add_special_tokens=False)
            pieces = [tokenizer.decode([i]) for i in ids]
            so_far, after = "", None
            for k, piece in enumerate(pieces):
                so_far += piece
                if after is None and "<answer>" in so_far:
                    after = k + 1
                top = [(piece, 0.0)]
                if k == after:
                    top = [(piece, math.log(0.6)), ("not", math.log(0.3)), ("x", math.log(0.1))]
                logprobs.append(entry(ids[k], piece, top[0][1], top[:top_n]))
            finish = "stop"
        elif model_name == name:
            with lock, torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False,
                                     output_logits=True, return_dict_in_generate=True)
            gen = out.sequences[0, prompt_tokens:].tolist()
            text = tokenizer.decode(gen, skip_special_tokens=True)
            for k, tid in enumerate(gen):
                lp = torch.log_softmax(out.logits[k][0].float(), dim=-1)
                vals, idx = lp.topk(max(top_n, 1))
                top = [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(vals, idx)]
                logprobs.append(entry(tid, tokenizer.decode([tid]), float(lp[tid]), top[:top_n]))
            finish = "length" if len(gen) >= max_tokens else "stop"
        else:
            return error(404, f"The model `{model_name}` does not exist.")
        if model_name.startswith("reason:") and "</think>" in text:
            reasoning, _, text = text.partition("</think>")
            reasoning = reasoning.replace("<think>", "", 1)
        message = {"role": "assistant", "content": text}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "message": message,
                                  "logprobs": {"content": logprobs} if want_logprobs else None}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                "created": int(time.time()), "model": model_name, "choices": [choice],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(logprobs),
                          "total_tokens": prompt_tokens + len(logprobs)}}

    return app


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--name", default="tiny", help="the model id clients ask for")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--log", default=None, help="append each request as a JSON line here")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds every chat completion waits before "
                                                              "answering (a remote model's latency)")
    ap.add_argument("--list", action="append", default=[], help="another model id GET /v1/models lists "
                    "(a `script:` one a test loads with the name check on)")
    args = ap.parse_args()
    app = build_app(args.model_dir, args.name, args.log, tuple(args.list), args.delay)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
