"""A llama.cpp chat model at the token level: the prompt that goes in, the probabilities that come out.

``prompt_tokens`` renders a system message and a user turn with the model's
own chat template (ChatML when the GGUF has none) and tokenizes it part by
part: the template and the trusted parts with special tokens, the data parts
(stored text, a question) *without*, so that stored text can never close a chat
turn or open a system one. ``head_tokens`` are the tokens every prompt of one
system message starts with (``replies`` keeps them evaluated); ``last_logits``
and ``log_softmax`` read what the model gives back.

Every function takes a loaded ``llama_cpp.Llama``; llama_cpp is imported only
inside them.

What it does not do: load a model or choose its threads (``llamacpp``), or say
what to ask (``prompts``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def prompt_tokens(llm, system: str, user_parts: Sequence[tuple[str, bool]]) -> list[int]:
    """Chat-formatted prompt tokens; user parts flagged False are data, tokenized without special tokens.

    Args:
        llm: a loaded ``llama_cpp.Llama``.
        system: the system message.
        user_parts: the user turn as ``(text, trusted)`` pieces, in order.

    Returns:
        The prompt's token ids, BOS first, ending where the assistant's reply starts.
    """
    sentinels = [f"\u241e{i}\u241e" for i in range(len(user_parts))]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "".join(sentinels)}]
    rendered = render_chat(llm, messages)
    tokens: list[int] = []
    rest = rendered
    first = True
    for (text, trusted), sentinel in zip(user_parts, sentinels, strict=True):
        head, rest = rest.split(sentinel, 1)
        tokens += llm.tokenize(head.encode("utf-8"), add_bos=first, special=True)
        tokens += llm.tokenize(text.encode("utf-8"), add_bos=False, special=trusted)
        first = False
    tokens += llm.tokenize(rest.encode("utf-8"), add_bos=False, special=True)
    return tokens


def render_chat(llm, messages: list[dict]) -> str:
    """The model's chat template applied to messages (ChatML when the GGUF has none)."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return out + "<|im_start|>assistant\n"
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def token_text(tid: int) -> str:
        return llm.detokenize([tid], special=True).decode("utf-8", errors="ignore") if tid >= 0 else ""

    formatter = Jinja2ChatFormatter(template, eos_token=token_text(llm.token_eos()),
                                    bos_token=token_text(llm.token_bos()))
    prompt = formatter(messages=messages).prompt
    bos = token_text(llm.token_bos())
    if bos and prompt.startswith(bos):  # tokenize(add_bos=True) adds it again otherwise
        prompt = prompt[len(bos):]
    return prompt


def end_of_turn(llm) -> int:
    """The token that closes a chat turn: the template's own marker when it is one token, else end of text."""
    for marker in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>"):
        toks = llm.tokenize(marker.encode("utf-8"), add_bos=False, special=True)
        if len(toks) == 1:
            return toks[0]
    return llm.token_eos()


def last_logits(llm) -> np.ndarray:
    """Logits [n_vocab] of the last evaluated token (a view of llama.cpp's buffer, not a copy)."""
    import llama_cpp

    ptr = llama_cpp.llama_get_logits(llm.ctx)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-probabilities of logits x (same shape)."""
    z = x - x.max()
    return z - np.log(np.exp(z).sum())


def head_tokens(llm, system: str, first_part: tuple[str, bool]) -> list[int]:
    """The tokens every ``prompt_tokens(llm, system, [first_part, ...])`` starts with, whatever follows it."""
    sentinel = "\u241e0\u241e"
    rendered = render_chat(llm, [{"role": "system", "content": system}, {"role": "user", "content": sentinel}])
    head = rendered.split(sentinel, 1)[0]
    text, trusted = first_part
    return (llm.tokenize(head.encode("utf-8"), add_bos=True, special=True)
            + llm.tokenize(text.encode("utf-8"), add_bos=False, special=trusted))
