"""The built-in mock model: a deterministic upstream for offline use and tests.

It answers Messages and count_tokens calls without a network or a key. The same request always
gives the same answer, in every process: the text is drawn from a fixed word list with a seed
hashed (SHA-256) from the target model and the last user text, and the message id from the whole
body (without ``stream``), so a streamed answer accumulates to exactly the non-streamed Message.

What it does with a request:

- Text: ``MockConfig.words`` words (or ``[mock words=N]``), in sentences. One word is one output
  token. A request ending in an assistant turn (prefill) gets the continuation only.
- ``max_tokens``: output is cut at that many tokens (thinking first, then text, then a tool call)
  with ``stop_reason: "max_tokens"``; ``0`` gives empty content and ``output_tokens: 0``. A tool
  call that does not fit whole is left out.
- ``stop_sequences``: the text is cut just before the sequence that completes first (earliest
  end; on a tie the earliest start), ``stop_reason: "stop_sequence"``, ``stop_sequence`` set. The
  tokens of the text up to the end of the sequence are counted. Thinking is not searched.
- Tools: one short text block and one ``tool_use`` block (``stop_reason: "tool_use"``) when
  ``tool_choice`` is ``{type: "any"}`` (the first custom tool) or ``{type: "tool", name}``, when
  ``[mock tool=NAME]`` names a custom tool, or when ``tool_choice`` is auto/absent, the request is
  the first turn of its conversation (no ``assistant`` message before the last ``user`` one) and
  the last user text mentions a custom tool's name (the first such tool in ``tools`` order).
  Never with ``{type: "none"}``. A turn whose last user message carries ``tool_result`` blocks is
  answered like a model ending an agent loop: text and ``end_turn``, with no tool call unless
  ``tool_choice`` (any/tool) or a ``[mock tool=NAME]`` directive asks for one. So an agent whose
  every turn names its tools (system reminders, tool results) gets one tool call at most, not a
  loop that never ends. Only custom tools (``type`` absent or ``"custom"``) are called; the input is
  built from ``input_schema``: the required properties (all of them when none is required), with
  ``enum`` -> first value, ``const`` -> it, string -> ``"sample"``, integer -> 1, number -> 1.5,
  boolean -> true, array -> [], null -> null, object -> its required properties (so ``{}``).
- Thinking (``thinking.type`` ``"enabled"`` or ``"adaptive"``): a leading ``thinking`` block of
  ``MockConfig.thinking_words`` words (capped by ``budget_tokens``) and a signature; the text is
  empty with ``display: "omitted"`` but its tokens are still counted.
- Usage: ``input_tokens`` is the estimate of ``text.estimate_input_tokens`` (text about four
  characters a token, an image 1600, a PDF 1600, tools their JSON text); ``output_tokens`` counts
  thinking words, text words and the tool input's JSON text over four (``max_tokens`` when cut
  there, at least 1 unless ``max_tokens`` is 0); cache fields 0; ``service_tier: "standard"``.
- Timing: ``ttft_ms`` before the first content delta and ``gap_ms`` before each later one; a
  non-streamed answer waits the same total. Every wait is a cancellable ``asyncio.sleep``.

Directives, written anywhere in the text of the last ``user`` message (several may be combined,
in one bracket or many; ``[mock echo words=5]`` works). An unknown key or a bad value is a 400:

==========================================  =========================================================
``[mock words=N]``                          answer with N words instead of ``MockConfig.words``
``[mock echo]``                             answer with the last user text, directives removed
``[mock tool=NAME]``                        call the custom tool NAME (unless tool_choice is none)
``[mock error=TYPE]``                       fail before answering with that error: an Anthropic
                                            error type (``overloaded_error`` -> 529,
                                            ``rate_limit_error`` -> 429 with ``retry-after: 1``,
                                            ``api_error`` -> 500, ...) or an HTTP status
                                            (``error=503``); count_tokens fails too
``[mock stream_error=TYPE after=N]``        streaming: after N content deltas (default 0) send an
                                            SSE ``error`` event and end, with no ``message_stop``;
                                            a non-streamed call raises the error instead
``[mock ttft_ms=MS gap_ms=MS]``             override the configured timing for this request
``[mock words_per_delta=N]``                words per ``text_delta``/``thinking_delta``
==========================================  =========================================================

The seed ignores the directives, so ``[mock words=50] hi`` starts with the words of ``hi``.
"""

from .config import DEFAULT_MODELS, MockConfig
from .upstream import MockUpstream

__all__ = ["DEFAULT_MODELS", "MockConfig", "MockUpstream"]
