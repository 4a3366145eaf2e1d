"""Translations between the Messages API and other wire formats, pure (no I/O).

``openai_request``: Anthropic request -> chat-completions body (400 naming what cannot be said);
``openai_response``: chat completion -> Anthropic Message; ``openai_stream``: the streaming state
machine, chunk dicts in, Anthropic event dicts out; ``estimate``: the local token estimate for
upstreams that cannot count. The ``openai`` upstream adapter drives them.
"""

from __future__ import annotations
