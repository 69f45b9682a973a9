"""A llama.cpp chat model at the token level: the prompt that goes in, the probabilities that come out.

``prompt_tokens`` renders a system message and a user turn with the model's
own chat template (ChatML when the GGUF has none) and tokenizes it part by
part: the template and the trusted parts with special tokens, the data parts
(stored text, a question) *without*, so that stored text can never close a chat
turn or open a system one. ``first_token_logprobs`` and ``reply_logprob`` read
the model's log-probabilities of a reply from the cached prompt, so that many
candidate replies can be scored after one evaluation of the prompt.

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


def first_token_logprobs(llm, prompt: list[int]) -> np.ndarray:
    """Evaluate a prompt from scratch; the log-probabilities [n_vocab] of the reply's first token."""
    llm.reset()
    llm.eval(prompt)
    return log_softmax(last_logits(llm).astype(np.float64))


def reply_logprob(llm, n_prompt: int, tokens: Sequence[int], first: np.ndarray) -> float:
    """Log-probability of tokens, then the end of the turn, as the whole reply to the prompt just evaluated.

    The tokens are evaluated from the prompt's cached state (``n_prompt``
    tokens, see ``first_token_logprobs``, whose result is ``first``) in one
    batch keeping the logits of every position; the cache is cut back to the
    prompt afterwards, so replies can be scored one after another.
    """
    import llama_cpp

    seq = list(tokens)[: llm.n_batch - 1] + [end_of_turn(llm)]
    ctx, batch = llm._ctx, llm._batch
    ctx.kv_cache_seq_rm(-1, n_prompt, -1)
    b = batch.batch
    b.n_tokens = len(seq)
    for j, t in enumerate(seq):
        b.token[j], b.pos[j], b.seq_id[j][0], b.n_seq_id[j], b.logits[j] = t, n_prompt + j, 0, 1, True
    ctx.decode(batch)
    rows = np.ctypeslib.as_array(llama_cpp.llama_get_logits(ctx.ctx), shape=(len(seq), llm.n_vocab()))
    lp = float(first[seq[0]]) + sum(
        float(log_softmax(rows[j].astype(np.float64))[seq[j + 1]]) for j in range(len(seq) - 1))
    ctx.kv_cache_seq_rm(-1, n_prompt, -1)
    llm.n_tokens = n_prompt
    return lp
