from sidecar.messages.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateMessageRequest(_message.Message):
    __slots__ = ("model", "messages", "max_tokens", "system_text", "system_blocks", "stop_sequences", "stream", "metadata", "tools", "tool_choice", "thinking", "output_config", "cache_control", "service_tier", "container_id", "container_params", "inference_geo", "speed", "diagnostics", "temperature", "top_p", "top_k", "context_management", "mcp_servers", "compaction", "fallbacks", "fallback_credit_token", "billing_policy", "thread", "extra_json")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_TEXT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TIER_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_PARAMS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_GEO_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_MANAGEMENT_FIELD_NUMBER: _ClassVar[int]
    MCP_SERVERS_FIELD_NUMBER: _ClassVar[int]
    COMPACTION_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_CREDIT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BILLING_POLICY_FIELD_NUMBER: _ClassVar[int]
    THREAD_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[MessageParam]
    max_tokens: int
    system_text: str
    system_blocks: ContentBlockList
    stop_sequences: _containers.RepeatedScalarFieldContainer[str]
    stream: bool
    metadata: Metadata
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    tool_choice: ToolChoice
    thinking: Thinking
    output_config: OutputConfig
    cache_control: CacheControl
    service_tier: str
    container_id: str
    container_params: ContainerParams
    inference_geo: str
    speed: str
    diagnostics: DiagnosticsParams
    temperature: float
    top_p: float
    top_k: int
    context_management: str
    mcp_servers: _containers.RepeatedCompositeFieldContainer[McpServer]
    compaction: str
    fallbacks: str
    fallback_credit_token: str
    billing_policy: str
    thread: str
    extra_json: str
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[MessageParam, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., system_text: _Optional[str] = ..., system_blocks: _Optional[_Union[ContentBlockList, _Mapping]] = ..., stop_sequences: _Optional[_Iterable[str]] = ..., stream: _Optional[bool] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., tool_choice: _Optional[_Union[ToolChoice, _Mapping]] = ..., thinking: _Optional[_Union[Thinking, _Mapping]] = ..., output_config: _Optional[_Union[OutputConfig, _Mapping]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., service_tier: _Optional[str] = ..., container_id: _Optional[str] = ..., container_params: _Optional[_Union[ContainerParams, _Mapping]] = ..., inference_geo: _Optional[str] = ..., speed: _Optional[str] = ..., diagnostics: _Optional[_Union[DiagnosticsParams, _Mapping]] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., context_management: _Optional[str] = ..., mcp_servers: _Optional[_Iterable[_Union[McpServer, _Mapping]]] = ..., compaction: _Optional[str] = ..., fallbacks: _Optional[str] = ..., fallback_credit_token: _Optional[str] = ..., billing_policy: _Optional[str] = ..., thread: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageParam(_message.Message):
    __slots__ = ("role", "content_text", "content_blocks", "extra_json")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    role: str
    content_text: str
    content_blocks: ContentBlockList
    extra_json: str
    def __init__(self, role: _Optional[str] = ..., content_text: _Optional[str] = ..., content_blocks: _Optional[_Union[ContentBlockList, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContentBlockList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    def __init__(self, items: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ...) -> None: ...

class Metadata(_message.Message):
    __slots__ = ("user_id", "extra_json")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    extra_json: str
    def __init__(self, user_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class OutputConfig(_message.Message):
    __slots__ = ("effort", "format", "extra_json")
    EFFORT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    effort: str
    format: OutputFormat
    extra_json: str
    def __init__(self, effort: _Optional[str] = ..., format: _Optional[_Union[OutputFormat, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class OutputFormat(_message.Message):
    __slots__ = ("type", "schema", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    schema: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., schema: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CacheControl(_message.Message):
    __slots__ = ("type", "ttl", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    ttl: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., ttl: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContainerParams(_message.Message):
    __slots__ = ("id", "skills", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    skills: _containers.RepeatedCompositeFieldContainer[ContainerSkill]
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., skills: _Optional[_Iterable[_Union[ContainerSkill, _Mapping]]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContainerSkill(_message.Message):
    __slots__ = ("skill_id", "type", "version", "extra_json")
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    type: str
    version: str
    extra_json: str
    def __init__(self, skill_id: _Optional[str] = ..., type: _Optional[str] = ..., version: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class DiagnosticsParams(_message.Message):
    __slots__ = ("previous_message_id", "extra_json")
    PREVIOUS_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    previous_message_id: str
    extra_json: str
    def __init__(self, previous_message_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class McpServer(_message.Message):
    __slots__ = ("type", "url", "name", "authorization_token", "tool_configuration", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOOL_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    url: str
    name: str
    authorization_token: str
    tool_configuration: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., url: _Optional[str] = ..., name: _Optional[str] = ..., authorization_token: _Optional[str] = ..., tool_configuration: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("custom", "bash", "text_editor", "memory", "computer_toolset", "browser_toolset", "web_search", "web_fetch", "code_execution", "tool_search_tool_bm25", "tool_search_tool_regex", "unknown_json")
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    BASH_FIELD_NUMBER: _ClassVar[int]
    TEXT_EDITOR_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    COMPUTER_TOOLSET_FIELD_NUMBER: _ClassVar[int]
    BROWSER_TOOLSET_FIELD_NUMBER: _ClassVar[int]
    WEB_SEARCH_FIELD_NUMBER: _ClassVar[int]
    WEB_FETCH_FIELD_NUMBER: _ClassVar[int]
    CODE_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    TOOL_SEARCH_TOOL_BM25_FIELD_NUMBER: _ClassVar[int]
    TOOL_SEARCH_TOOL_REGEX_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    custom: CustomTool
    bash: VersionedTool
    text_editor: TextEditorTool
    memory: VersionedTool
    computer_toolset: ToolsetTool
    browser_toolset: ToolsetTool
    web_search: WebSearchTool
    web_fetch: WebFetchTool
    code_execution: VersionedTool
    tool_search_tool_bm25: VersionedTool
    tool_search_tool_regex: VersionedTool
    unknown_json: str
    def __init__(self, custom: _Optional[_Union[CustomTool, _Mapping]] = ..., bash: _Optional[_Union[VersionedTool, _Mapping]] = ..., text_editor: _Optional[_Union[TextEditorTool, _Mapping]] = ..., memory: _Optional[_Union[VersionedTool, _Mapping]] = ..., computer_toolset: _Optional[_Union[ToolsetTool, _Mapping]] = ..., browser_toolset: _Optional[_Union[ToolsetTool, _Mapping]] = ..., web_search: _Optional[_Union[WebSearchTool, _Mapping]] = ..., web_fetch: _Optional[_Union[WebFetchTool, _Mapping]] = ..., code_execution: _Optional[_Union[VersionedTool, _Mapping]] = ..., tool_search_tool_bm25: _Optional[_Union[VersionedTool, _Mapping]] = ..., tool_search_tool_regex: _Optional[_Union[VersionedTool, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class CustomTool(_message.Message):
    __slots__ = ("type", "name", "description", "input_schema", "cache_control", "strict", "input_examples", "defer_loading", "eager_input_streaming", "allowed_callers", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    INPUT_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    DEFER_LOADING_FIELD_NUMBER: _ClassVar[int]
    EAGER_INPUT_STREAMING_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CALLERS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    description: str
    input_schema: str
    cache_control: CacheControl
    strict: bool
    input_examples: _containers.RepeatedScalarFieldContainer[str]
    defer_loading: bool
    eager_input_streaming: bool
    allowed_callers: _containers.RepeatedScalarFieldContainer[str]
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., input_schema: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., strict: _Optional[bool] = ..., input_examples: _Optional[_Iterable[str]] = ..., defer_loading: _Optional[bool] = ..., eager_input_streaming: _Optional[bool] = ..., allowed_callers: _Optional[_Iterable[str]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class VersionedTool(_message.Message):
    __slots__ = ("type", "name", "cache_control", "defer_loading", "strict", "allowed_callers", "input_examples", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    DEFER_LOADING_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CALLERS_FIELD_NUMBER: _ClassVar[int]
    INPUT_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    cache_control: CacheControl
    defer_loading: bool
    strict: bool
    allowed_callers: _containers.RepeatedScalarFieldContainer[str]
    input_examples: _containers.RepeatedScalarFieldContainer[str]
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., defer_loading: _Optional[bool] = ..., strict: _Optional[bool] = ..., allowed_callers: _Optional[_Iterable[str]] = ..., input_examples: _Optional[_Iterable[str]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class TextEditorTool(_message.Message):
    __slots__ = ("type", "name", "cache_control", "defer_loading", "strict", "allowed_callers", "input_examples", "max_characters", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    DEFER_LOADING_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CALLERS_FIELD_NUMBER: _ClassVar[int]
    INPUT_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    cache_control: CacheControl
    defer_loading: bool
    strict: bool
    allowed_callers: _containers.RepeatedScalarFieldContainer[str]
    input_examples: _containers.RepeatedScalarFieldContainer[str]
    max_characters: int
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., defer_loading: _Optional[bool] = ..., strict: _Optional[bool] = ..., allowed_callers: _Optional[_Iterable[str]] = ..., input_examples: _Optional[_Iterable[str]] = ..., max_characters: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolsetTool(_message.Message):
    __slots__ = ("type", "name", "cache_control", "defer_loading", "strict", "allowed_callers", "configs", "default_config", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    DEFER_LOADING_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CALLERS_FIELD_NUMBER: _ClassVar[int]
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    cache_control: CacheControl
    defer_loading: bool
    strict: bool
    allowed_callers: _containers.RepeatedScalarFieldContainer[str]
    configs: str
    default_config: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., defer_loading: _Optional[bool] = ..., strict: _Optional[bool] = ..., allowed_callers: _Optional[_Iterable[str]] = ..., configs: _Optional[str] = ..., default_config: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class WebSearchTool(_message.Message):
    __slots__ = ("type", "name", "cache_control", "defer_loading", "strict", "allowed_callers", "max_uses", "allowed_domains", "blocked_domains", "user_location", "response_inclusion", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    DEFER_LOADING_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CALLERS_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    USER_LOCATION_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_INCLUSION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    cache_control: CacheControl
    defer_loading: bool
    strict: bool
    allowed_callers: _containers.RepeatedScalarFieldContainer[str]
    max_uses: int
    allowed_domains: _containers.RepeatedScalarFieldContainer[str]
    blocked_domains: _containers.RepeatedScalarFieldContainer[str]
    user_location: UserLocation
    response_inclusion: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., defer_loading: _Optional[bool] = ..., strict: _Optional[bool] = ..., allowed_callers: _Optional[_Iterable[str]] = ..., max_uses: _Optional[int] = ..., allowed_domains: _Optional[_Iterable[str]] = ..., blocked_domains: _Optional[_Iterable[str]] = ..., user_location: _Optional[_Union[UserLocation, _Mapping]] = ..., response_inclusion: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class UserLocation(_message.Message):
    __slots__ = ("type", "city", "region", "country", "timezone", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    city: str
    region: str
    country: str
    timezone: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., city: _Optional[str] = ..., region: _Optional[str] = ..., country: _Optional[str] = ..., timezone: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class WebFetchTool(_message.Message):
    __slots__ = ("type", "name", "cache_control", "defer_loading", "strict", "allowed_callers", "max_uses", "allowed_domains", "blocked_domains", "citations", "max_content_tokens", "url_sources", "use_cache", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    DEFER_LOADING_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_CALLERS_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    URL_SOURCES_FIELD_NUMBER: _ClassVar[int]
    USE_CACHE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    cache_control: CacheControl
    defer_loading: bool
    strict: bool
    allowed_callers: _containers.RepeatedScalarFieldContainer[str]
    max_uses: int
    allowed_domains: _containers.RepeatedScalarFieldContainer[str]
    blocked_domains: _containers.RepeatedScalarFieldContainer[str]
    citations: CitationsConfig
    max_content_tokens: int
    url_sources: str
    use_cache: bool
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., defer_loading: _Optional[bool] = ..., strict: _Optional[bool] = ..., allowed_callers: _Optional[_Iterable[str]] = ..., max_uses: _Optional[int] = ..., allowed_domains: _Optional[_Iterable[str]] = ..., blocked_domains: _Optional[_Iterable[str]] = ..., citations: _Optional[_Union[CitationsConfig, _Mapping]] = ..., max_content_tokens: _Optional[int] = ..., url_sources: _Optional[str] = ..., use_cache: _Optional[bool] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolChoice(_message.Message):
    __slots__ = ("auto", "any", "tool", "none", "unknown_json")
    AUTO_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    NONE_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    auto: ToolChoiceAuto
    any: ToolChoiceAny
    tool: ToolChoiceTool
    none: ToolChoiceNone
    unknown_json: str
    def __init__(self, auto: _Optional[_Union[ToolChoiceAuto, _Mapping]] = ..., any: _Optional[_Union[ToolChoiceAny, _Mapping]] = ..., tool: _Optional[_Union[ToolChoiceTool, _Mapping]] = ..., none: _Optional[_Union[ToolChoiceNone, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class ToolChoiceAuto(_message.Message):
    __slots__ = ("disable_parallel_tool_use", "extra_json")
    DISABLE_PARALLEL_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    disable_parallel_tool_use: bool
    extra_json: str
    def __init__(self, disable_parallel_tool_use: _Optional[bool] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolChoiceAny(_message.Message):
    __slots__ = ("disable_parallel_tool_use", "extra_json")
    DISABLE_PARALLEL_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    disable_parallel_tool_use: bool
    extra_json: str
    def __init__(self, disable_parallel_tool_use: _Optional[bool] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolChoiceTool(_message.Message):
    __slots__ = ("name", "disable_parallel_tool_use", "extra_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISABLE_PARALLEL_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    disable_parallel_tool_use: bool
    extra_json: str
    def __init__(self, name: _Optional[str] = ..., disable_parallel_tool_use: _Optional[bool] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolChoiceNone(_message.Message):
    __slots__ = ("extra_json",)
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    extra_json: str
    def __init__(self, extra_json: _Optional[str] = ...) -> None: ...

class Thinking(_message.Message):
    __slots__ = ("enabled", "adaptive", "disabled", "between_tools", "unknown_json")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ADAPTIVE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    BETWEEN_TOOLS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    enabled: ThinkingEnabled
    adaptive: ThinkingAdaptive
    disabled: ThinkingDisabled
    between_tools: ThinkingBetweenTools
    unknown_json: str
    def __init__(self, enabled: _Optional[_Union[ThinkingEnabled, _Mapping]] = ..., adaptive: _Optional[_Union[ThinkingAdaptive, _Mapping]] = ..., disabled: _Optional[_Union[ThinkingDisabled, _Mapping]] = ..., between_tools: _Optional[_Union[ThinkingBetweenTools, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class ThinkingEnabled(_message.Message):
    __slots__ = ("budget_tokens", "display", "extra_json")
    BUDGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    budget_tokens: int
    display: str
    extra_json: str
    def __init__(self, budget_tokens: _Optional[int] = ..., display: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ThinkingAdaptive(_message.Message):
    __slots__ = ("display", "extra_json")
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    display: str
    extra_json: str
    def __init__(self, display: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ThinkingDisabled(_message.Message):
    __slots__ = ("extra_json",)
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    extra_json: str
    def __init__(self, extra_json: _Optional[str] = ...) -> None: ...

class ThinkingBetweenTools(_message.Message):
    __slots__ = ("extra_json",)
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    extra_json: str
    def __init__(self, extra_json: _Optional[str] = ...) -> None: ...

class ContentBlock(_message.Message):
    __slots__ = ("text", "image", "document", "search_result", "tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result", "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "tool_search_tool_result", "tool_reference", "container_upload", "mcp_tool_use", "mcp_tool_result", "mcp_tool_listing", "compaction", "fallback", "advisor_tool_result", "browser_state", "unknown_json")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_RESULT_FIELD_NUMBER: _ClassVar[int]
    TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    REDACTED_THINKING_FIELD_NUMBER: _ClassVar[int]
    SERVER_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    WEB_SEARCH_TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    WEB_FETCH_TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    CODE_EXECUTION_TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    BASH_CODE_EXECUTION_TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    TEXT_EDITOR_CODE_EXECUTION_TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    TOOL_SEARCH_TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    TOOL_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    MCP_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    MCP_TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    MCP_TOOL_LISTING_FIELD_NUMBER: _ClassVar[int]
    COMPACTION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    ADVISOR_TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    BROWSER_STATE_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    text: TextBlock
    image: ImageBlock
    document: DocumentBlock
    search_result: SearchResultBlock
    tool_use: ToolUseBlock
    tool_result: ToolResultBlock
    thinking: ThinkingBlock
    redacted_thinking: RedactedThinkingBlock
    server_tool_use: ServerToolUseBlock
    web_search_tool_result: ServerToolResultBlock
    web_fetch_tool_result: ServerToolResultBlock
    code_execution_tool_result: ServerToolResultBlock
    bash_code_execution_tool_result: ServerToolResultBlock
    text_editor_code_execution_tool_result: ServerToolResultBlock
    tool_search_tool_result: ServerToolResultBlock
    tool_reference: ToolReferenceBlock
    container_upload: ContainerUploadBlock
    mcp_tool_use: McpToolUseBlock
    mcp_tool_result: McpToolResultBlock
    mcp_tool_listing: OpaqueBlock
    compaction: CompactionBlock
    fallback: FallbackBlock
    advisor_tool_result: ServerToolResultBlock
    browser_state: OpaqueBlock
    unknown_json: str
    def __init__(self, text: _Optional[_Union[TextBlock, _Mapping]] = ..., image: _Optional[_Union[ImageBlock, _Mapping]] = ..., document: _Optional[_Union[DocumentBlock, _Mapping]] = ..., search_result: _Optional[_Union[SearchResultBlock, _Mapping]] = ..., tool_use: _Optional[_Union[ToolUseBlock, _Mapping]] = ..., tool_result: _Optional[_Union[ToolResultBlock, _Mapping]] = ..., thinking: _Optional[_Union[ThinkingBlock, _Mapping]] = ..., redacted_thinking: _Optional[_Union[RedactedThinkingBlock, _Mapping]] = ..., server_tool_use: _Optional[_Union[ServerToolUseBlock, _Mapping]] = ..., web_search_tool_result: _Optional[_Union[ServerToolResultBlock, _Mapping]] = ..., web_fetch_tool_result: _Optional[_Union[ServerToolResultBlock, _Mapping]] = ..., code_execution_tool_result: _Optional[_Union[ServerToolResultBlock, _Mapping]] = ..., bash_code_execution_tool_result: _Optional[_Union[ServerToolResultBlock, _Mapping]] = ..., text_editor_code_execution_tool_result: _Optional[_Union[ServerToolResultBlock, _Mapping]] = ..., tool_search_tool_result: _Optional[_Union[ServerToolResultBlock, _Mapping]] = ..., tool_reference: _Optional[_Union[ToolReferenceBlock, _Mapping]] = ..., container_upload: _Optional[_Union[ContainerUploadBlock, _Mapping]] = ..., mcp_tool_use: _Optional[_Union[McpToolUseBlock, _Mapping]] = ..., mcp_tool_result: _Optional[_Union[McpToolResultBlock, _Mapping]] = ..., mcp_tool_listing: _Optional[_Union[OpaqueBlock, _Mapping]] = ..., compaction: _Optional[_Union[CompactionBlock, _Mapping]] = ..., fallback: _Optional[_Union[FallbackBlock, _Mapping]] = ..., advisor_tool_result: _Optional[_Union[ServerToolResultBlock, _Mapping]] = ..., browser_state: _Optional[_Union[OpaqueBlock, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class OpaqueBlock(_message.Message):
    __slots__ = ("extra_json",)
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    extra_json: str
    def __init__(self, extra_json: _Optional[str] = ...) -> None: ...

class TextBlock(_message.Message):
    __slots__ = ("text", "citations", "cache_control", "extra_json")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    text: str
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    cache_control: CacheControl
    extra_json: str
    def __init__(self, text: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ImageBlock(_message.Message):
    __slots__ = ("source", "cache_control", "transformations", "extra_json")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMATIONS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    source: Source
    cache_control: CacheControl
    transformations: ImageTransformations
    extra_json: str
    def __init__(self, source: _Optional[_Union[Source, _Mapping]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., transformations: _Optional[_Union[ImageTransformations, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ImageTransformations(_message.Message):
    __slots__ = ("oversized_image", "extra_json")
    OVERSIZED_IMAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    oversized_image: str
    extra_json: str
    def __init__(self, oversized_image: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class DocumentBlock(_message.Message):
    __slots__ = ("source", "title", "context", "citations", "cache_control", "extra_json")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    source: Source
    title: str
    context: str
    citations: CitationsConfig
    cache_control: CacheControl
    extra_json: str
    def __init__(self, source: _Optional[_Union[Source, _Mapping]] = ..., title: _Optional[str] = ..., context: _Optional[str] = ..., citations: _Optional[_Union[CitationsConfig, _Mapping]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CitationsConfig(_message.Message):
    __slots__ = ("enabled", "extra_json")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    extra_json: str
    def __init__(self, enabled: _Optional[bool] = ..., extra_json: _Optional[str] = ...) -> None: ...

class SearchResultBlock(_message.Message):
    __slots__ = ("source", "title", "content", "citations", "cache_control", "extra_json")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    source: str
    title: str
    content: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    citations: CitationsConfig
    cache_control: CacheControl
    extra_json: str
    def __init__(self, source: _Optional[str] = ..., title: _Optional[str] = ..., content: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ..., citations: _Optional[_Union[CitationsConfig, _Mapping]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolUseBlock(_message.Message):
    __slots__ = ("id", "name", "input", "caller", "toolset_name", "cache_control", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    TOOLSET_NAME_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    input: str
    caller: Caller
    toolset_name: str
    cache_control: CacheControl
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., input: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., toolset_name: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class Caller(_message.Message):
    __slots__ = ("type", "tool_id", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TOOL_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    tool_id: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., tool_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolResultBlock(_message.Message):
    __slots__ = ("tool_use_id", "content_text", "content_blocks", "is_error", "toolset_name", "cache_control", "extra_json")
    TOOL_USE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOOLSET_NAME_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    tool_use_id: str
    content_text: str
    content_blocks: ContentBlockList
    is_error: bool
    toolset_name: str
    cache_control: CacheControl
    extra_json: str
    def __init__(self, tool_use_id: _Optional[str] = ..., content_text: _Optional[str] = ..., content_blocks: _Optional[_Union[ContentBlockList, _Mapping]] = ..., is_error: _Optional[bool] = ..., toolset_name: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ThinkingBlock(_message.Message):
    __slots__ = ("thinking", "signature", "extra_json")
    THINKING_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    thinking: str
    signature: str
    extra_json: str
    def __init__(self, thinking: _Optional[str] = ..., signature: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class RedactedThinkingBlock(_message.Message):
    __slots__ = ("data", "extra_json")
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    data: str
    extra_json: str
    def __init__(self, data: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ServerToolUseBlock(_message.Message):
    __slots__ = ("id", "name", "input", "caller", "cache_control", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    input: str
    caller: Caller
    cache_control: CacheControl
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., input: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ServerToolResultBlock(_message.Message):
    __slots__ = ("tool_use_id", "content_list", "content_object", "content_text", "caller", "cache_control", "extra_json")
    TOOL_USE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LIST_FIELD_NUMBER: _ClassVar[int]
    CONTENT_OBJECT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TEXT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    tool_use_id: str
    content_list: ServerToolContentList
    content_object: ServerToolContent
    content_text: str
    caller: Caller
    cache_control: CacheControl
    extra_json: str
    def __init__(self, tool_use_id: _Optional[str] = ..., content_list: _Optional[_Union[ServerToolContentList, _Mapping]] = ..., content_object: _Optional[_Union[ServerToolContent, _Mapping]] = ..., content_text: _Optional[str] = ..., caller: _Optional[_Union[Caller, _Mapping]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ServerToolContentList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ServerToolContent]
    def __init__(self, items: _Optional[_Iterable[_Union[ServerToolContent, _Mapping]]] = ...) -> None: ...

class ServerToolContent(_message.Message):
    __slots__ = ("web_search_result", "web_search_tool_result_error", "web_fetch_result", "web_fetch_tool_result_error", "code_execution_result", "encrypted_code_execution_result", "code_execution_output", "code_execution_tool_result_error", "bash_code_execution_result", "bash_code_execution_output", "bash_code_execution_tool_result_error", "text_editor_code_execution_view_result", "text_editor_code_execution_create_result", "text_editor_code_execution_str_replace_result", "text_editor_code_execution_tool_result_error", "tool_search_tool_search_result", "tool_search_tool_result_error", "unknown_json")
    WEB_SEARCH_RESULT_FIELD_NUMBER: _ClassVar[int]
    WEB_SEARCH_TOOL_RESULT_ERROR_FIELD_NUMBER: _ClassVar[int]
    WEB_FETCH_RESULT_FIELD_NUMBER: _ClassVar[int]
    WEB_FETCH_TOOL_RESULT_ERROR_FIELD_NUMBER: _ClassVar[int]
    CODE_EXECUTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_CODE_EXECUTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    CODE_EXECUTION_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CODE_EXECUTION_TOOL_RESULT_ERROR_FIELD_NUMBER: _ClassVar[int]
    BASH_CODE_EXECUTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    BASH_CODE_EXECUTION_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    BASH_CODE_EXECUTION_TOOL_RESULT_ERROR_FIELD_NUMBER: _ClassVar[int]
    TEXT_EDITOR_CODE_EXECUTION_VIEW_RESULT_FIELD_NUMBER: _ClassVar[int]
    TEXT_EDITOR_CODE_EXECUTION_CREATE_RESULT_FIELD_NUMBER: _ClassVar[int]
    TEXT_EDITOR_CODE_EXECUTION_STR_REPLACE_RESULT_FIELD_NUMBER: _ClassVar[int]
    TEXT_EDITOR_CODE_EXECUTION_TOOL_RESULT_ERROR_FIELD_NUMBER: _ClassVar[int]
    TOOL_SEARCH_TOOL_SEARCH_RESULT_FIELD_NUMBER: _ClassVar[int]
    TOOL_SEARCH_TOOL_RESULT_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    web_search_result: WebSearchResult
    web_search_tool_result_error: ServerToolError
    web_fetch_result: WebFetchResult
    web_fetch_tool_result_error: ServerToolError
    code_execution_result: CodeExecutionResult
    encrypted_code_execution_result: CodeExecutionResult
    code_execution_output: CodeExecutionOutput
    code_execution_tool_result_error: ServerToolError
    bash_code_execution_result: CodeExecutionResult
    bash_code_execution_output: CodeExecutionOutput
    bash_code_execution_tool_result_error: ServerToolError
    text_editor_code_execution_view_result: TextEditorViewResult
    text_editor_code_execution_create_result: TextEditorCreateResult
    text_editor_code_execution_str_replace_result: TextEditorStrReplaceResult
    text_editor_code_execution_tool_result_error: ServerToolError
    tool_search_tool_search_result: ToolSearchResult
    tool_search_tool_result_error: ServerToolError
    unknown_json: str
    def __init__(self, web_search_result: _Optional[_Union[WebSearchResult, _Mapping]] = ..., web_search_tool_result_error: _Optional[_Union[ServerToolError, _Mapping]] = ..., web_fetch_result: _Optional[_Union[WebFetchResult, _Mapping]] = ..., web_fetch_tool_result_error: _Optional[_Union[ServerToolError, _Mapping]] = ..., code_execution_result: _Optional[_Union[CodeExecutionResult, _Mapping]] = ..., encrypted_code_execution_result: _Optional[_Union[CodeExecutionResult, _Mapping]] = ..., code_execution_output: _Optional[_Union[CodeExecutionOutput, _Mapping]] = ..., code_execution_tool_result_error: _Optional[_Union[ServerToolError, _Mapping]] = ..., bash_code_execution_result: _Optional[_Union[CodeExecutionResult, _Mapping]] = ..., bash_code_execution_output: _Optional[_Union[CodeExecutionOutput, _Mapping]] = ..., bash_code_execution_tool_result_error: _Optional[_Union[ServerToolError, _Mapping]] = ..., text_editor_code_execution_view_result: _Optional[_Union[TextEditorViewResult, _Mapping]] = ..., text_editor_code_execution_create_result: _Optional[_Union[TextEditorCreateResult, _Mapping]] = ..., text_editor_code_execution_str_replace_result: _Optional[_Union[TextEditorStrReplaceResult, _Mapping]] = ..., text_editor_code_execution_tool_result_error: _Optional[_Union[ServerToolError, _Mapping]] = ..., tool_search_tool_search_result: _Optional[_Union[ToolSearchResult, _Mapping]] = ..., tool_search_tool_result_error: _Optional[_Union[ServerToolError, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class WebSearchResult(_message.Message):
    __slots__ = ("url", "title", "encrypted_content", "page_age", "extra_json")
    URL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_AGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    url: str
    title: str
    encrypted_content: str
    page_age: str
    extra_json: str
    def __init__(self, url: _Optional[str] = ..., title: _Optional[str] = ..., encrypted_content: _Optional[str] = ..., page_age: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ServerToolError(_message.Message):
    __slots__ = ("error_code", "error_message", "extra_json")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    error_message: str
    extra_json: str
    def __init__(self, error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class WebFetchResult(_message.Message):
    __slots__ = ("url", "retrieved_at", "content", "extra_json")
    URL_FIELD_NUMBER: _ClassVar[int]
    RETRIEVED_AT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    url: str
    retrieved_at: str
    content: ContentBlock
    extra_json: str
    def __init__(self, url: _Optional[str] = ..., retrieved_at: _Optional[str] = ..., content: _Optional[_Union[ContentBlock, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CodeExecutionResult(_message.Message):
    __slots__ = ("stdout", "stderr", "return_code", "content", "encrypted_stdout", "extra_json")
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    RETURN_CODE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_STDOUT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    stdout: str
    stderr: str
    return_code: int
    content: _containers.RepeatedCompositeFieldContainer[ServerToolContent]
    encrypted_stdout: str
    extra_json: str
    def __init__(self, stdout: _Optional[str] = ..., stderr: _Optional[str] = ..., return_code: _Optional[int] = ..., content: _Optional[_Iterable[_Union[ServerToolContent, _Mapping]]] = ..., encrypted_stdout: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CodeExecutionOutput(_message.Message):
    __slots__ = ("file_id", "extra_json")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    extra_json: str
    def __init__(self, file_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class TextEditorViewResult(_message.Message):
    __slots__ = ("file_type", "content", "num_lines", "start_line", "total_lines", "extra_json")
    FILE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    NUM_LINES_FIELD_NUMBER: _ClassVar[int]
    START_LINE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LINES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    file_type: str
    content: str
    num_lines: int
    start_line: int
    total_lines: int
    extra_json: str
    def __init__(self, file_type: _Optional[str] = ..., content: _Optional[str] = ..., num_lines: _Optional[int] = ..., start_line: _Optional[int] = ..., total_lines: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class TextEditorCreateResult(_message.Message):
    __slots__ = ("is_file_update", "extra_json")
    IS_FILE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    is_file_update: bool
    extra_json: str
    def __init__(self, is_file_update: _Optional[bool] = ..., extra_json: _Optional[str] = ...) -> None: ...

class TextEditorStrReplaceResult(_message.Message):
    __slots__ = ("lines", "new_lines", "new_start", "old_lines", "old_start", "extra_json")
    LINES_FIELD_NUMBER: _ClassVar[int]
    NEW_LINES_FIELD_NUMBER: _ClassVar[int]
    NEW_START_FIELD_NUMBER: _ClassVar[int]
    OLD_LINES_FIELD_NUMBER: _ClassVar[int]
    OLD_START_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    new_lines: int
    new_start: int
    old_lines: int
    old_start: int
    extra_json: str
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., new_lines: _Optional[int] = ..., new_start: _Optional[int] = ..., old_lines: _Optional[int] = ..., old_start: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolSearchResult(_message.Message):
    __slots__ = ("tool_references", "extra_json")
    TOOL_REFERENCES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    tool_references: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    extra_json: str
    def __init__(self, tool_references: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ToolReferenceBlock(_message.Message):
    __slots__ = ("tool_name", "cache_control", "extra_json")
    TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    tool_name: str
    cache_control: CacheControl
    extra_json: str
    def __init__(self, tool_name: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContainerUploadBlock(_message.Message):
    __slots__ = ("file_id", "cache_control", "extra_json")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    cache_control: CacheControl
    extra_json: str
    def __init__(self, file_id: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class McpToolUseBlock(_message.Message):
    __slots__ = ("id", "name", "server_name", "input", "cache_control", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    server_name: str
    input: str
    cache_control: CacheControl
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., server_name: _Optional[str] = ..., input: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class McpToolResultBlock(_message.Message):
    __slots__ = ("tool_use_id", "is_error", "content_text", "content_blocks", "cache_control", "extra_json")
    TOOL_USE_ID_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    tool_use_id: str
    is_error: bool
    content_text: str
    content_blocks: ContentBlockList
    cache_control: CacheControl
    extra_json: str
    def __init__(self, tool_use_id: _Optional[str] = ..., is_error: _Optional[bool] = ..., content_text: _Optional[str] = ..., content_blocks: _Optional[_Union[ContentBlockList, _Mapping]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CompactionBlock(_message.Message):
    __slots__ = ("content", "encrypted_content", "signature", "cache_control", "extra_json")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    content: str
    encrypted_content: str
    signature: str
    cache_control: CacheControl
    extra_json: str
    def __init__(self, content: _Optional[str] = ..., encrypted_content: _Optional[str] = ..., signature: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class FallbackBlock(_message.Message):
    __slots__ = ("to", "trigger", "extra_json")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    to: str
    trigger: str
    extra_json: str
    def __init__(self, to: _Optional[str] = ..., trigger: _Optional[str] = ..., extra_json: _Optional[str] = ..., **kwargs) -> None: ...

class Source(_message.Message):
    __slots__ = ("base64", "url", "file", "text", "content", "unknown_json")
    BASE64_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    base64: DataSource
    url: UrlSource
    file: FileSource
    text: DataSource
    content: ContentSource
    unknown_json: str
    def __init__(self, base64: _Optional[_Union[DataSource, _Mapping]] = ..., url: _Optional[_Union[UrlSource, _Mapping]] = ..., file: _Optional[_Union[FileSource, _Mapping]] = ..., text: _Optional[_Union[DataSource, _Mapping]] = ..., content: _Optional[_Union[ContentSource, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("media_type", "data", "extra_json")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    data: str
    extra_json: str
    def __init__(self, media_type: _Optional[str] = ..., data: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class UrlSource(_message.Message):
    __slots__ = ("url", "extra_json")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    url: str
    extra_json: str
    def __init__(self, url: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class FileSource(_message.Message):
    __slots__ = ("file_id", "extra_json")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    extra_json: str
    def __init__(self, file_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContentSource(_message.Message):
    __slots__ = ("content_text", "content_blocks", "extra_json")
    CONTENT_TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    content_text: str
    content_blocks: ContentBlockList
    extra_json: str
    def __init__(self, content_text: _Optional[str] = ..., content_blocks: _Optional[_Union[ContentBlockList, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("char_location", "page_location", "content_block_location", "web_search_result_location", "search_result_location", "unknown_json")
    CHAR_LOCATION_FIELD_NUMBER: _ClassVar[int]
    PAGE_LOCATION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_LOCATION_FIELD_NUMBER: _ClassVar[int]
    WEB_SEARCH_RESULT_LOCATION_FIELD_NUMBER: _ClassVar[int]
    SEARCH_RESULT_LOCATION_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    char_location: CharLocation
    page_location: PageLocation
    content_block_location: ContentBlockLocation
    web_search_result_location: WebSearchResultLocation
    search_result_location: SearchResultLocation
    unknown_json: str
    def __init__(self, char_location: _Optional[_Union[CharLocation, _Mapping]] = ..., page_location: _Optional[_Union[PageLocation, _Mapping]] = ..., content_block_location: _Optional[_Union[ContentBlockLocation, _Mapping]] = ..., web_search_result_location: _Optional[_Union[WebSearchResultLocation, _Mapping]] = ..., search_result_location: _Optional[_Union[SearchResultLocation, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class CharLocation(_message.Message):
    __slots__ = ("cited_text", "document_index", "document_title", "start_char_index", "end_char_index", "file_id", "extra_json")
    CITED_TEXT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TITLE_FIELD_NUMBER: _ClassVar[int]
    START_CHAR_INDEX_FIELD_NUMBER: _ClassVar[int]
    END_CHAR_INDEX_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    cited_text: str
    document_index: int
    document_title: str
    start_char_index: int
    end_char_index: int
    file_id: str
    extra_json: str
    def __init__(self, cited_text: _Optional[str] = ..., document_index: _Optional[int] = ..., document_title: _Optional[str] = ..., start_char_index: _Optional[int] = ..., end_char_index: _Optional[int] = ..., file_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class PageLocation(_message.Message):
    __slots__ = ("cited_text", "document_index", "document_title", "start_page_number", "end_page_number", "file_id", "extra_json")
    CITED_TEXT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TITLE_FIELD_NUMBER: _ClassVar[int]
    START_PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    END_PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    cited_text: str
    document_index: int
    document_title: str
    start_page_number: int
    end_page_number: int
    file_id: str
    extra_json: str
    def __init__(self, cited_text: _Optional[str] = ..., document_index: _Optional[int] = ..., document_title: _Optional[str] = ..., start_page_number: _Optional[int] = ..., end_page_number: _Optional[int] = ..., file_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContentBlockLocation(_message.Message):
    __slots__ = ("cited_text", "document_index", "document_title", "start_block_index", "end_block_index", "file_id", "extra_json")
    CITED_TEXT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TITLE_FIELD_NUMBER: _ClassVar[int]
    START_BLOCK_INDEX_FIELD_NUMBER: _ClassVar[int]
    END_BLOCK_INDEX_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    cited_text: str
    document_index: int
    document_title: str
    start_block_index: int
    end_block_index: int
    file_id: str
    extra_json: str
    def __init__(self, cited_text: _Optional[str] = ..., document_index: _Optional[int] = ..., document_title: _Optional[str] = ..., start_block_index: _Optional[int] = ..., end_block_index: _Optional[int] = ..., file_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class WebSearchResultLocation(_message.Message):
    __slots__ = ("cited_text", "url", "title", "encrypted_index", "extra_json")
    CITED_TEXT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_INDEX_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    cited_text: str
    url: str
    title: str
    encrypted_index: str
    extra_json: str
    def __init__(self, cited_text: _Optional[str] = ..., url: _Optional[str] = ..., title: _Optional[str] = ..., encrypted_index: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class SearchResultLocation(_message.Message):
    __slots__ = ("cited_text", "source", "title", "search_result_index", "start_block_index", "end_block_index", "extra_json")
    CITED_TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SEARCH_RESULT_INDEX_FIELD_NUMBER: _ClassVar[int]
    START_BLOCK_INDEX_FIELD_NUMBER: _ClassVar[int]
    END_BLOCK_INDEX_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    cited_text: str
    source: str
    title: str
    search_result_index: int
    start_block_index: int
    end_block_index: int
    extra_json: str
    def __init__(self, cited_text: _Optional[str] = ..., source: _Optional[str] = ..., title: _Optional[str] = ..., search_result_index: _Optional[int] = ..., start_block_index: _Optional[int] = ..., end_block_index: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("id", "type", "role", "content", "model", "stop_reason", "stop_sequence", "stop_details", "usage", "container", "diagnostics", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STOP_DETAILS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    role: str
    content: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    model: str
    stop_reason: str
    stop_sequence: str
    stop_details: StopDetails
    usage: Usage
    container: ContainerInfo
    diagnostics: Diagnostics
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., role: _Optional[str] = ..., content: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ..., model: _Optional[str] = ..., stop_reason: _Optional[str] = ..., stop_sequence: _Optional[str] = ..., stop_details: _Optional[_Union[StopDetails, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., container: _Optional[_Union[ContainerInfo, _Mapping]] = ..., diagnostics: _Optional[_Union[Diagnostics, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class StopDetails(_message.Message):
    __slots__ = ("type", "category", "explanation", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    category: str
    explanation: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., category: _Optional[str] = ..., explanation: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation", "server_tool_use", "service_tier", "output_tokens_details", "inference_geo", "speed", "extra_json")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CREATION_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CREATION_FIELD_NUMBER: _ClassVar[int]
    SERVER_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TIER_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_DETAILS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_GEO_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation: CacheCreation
    server_tool_use: ServerToolUsage
    service_tier: str
    output_tokens_details: OutputTokensDetails
    inference_geo: str
    speed: str
    extra_json: str
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_creation_input_tokens: _Optional[int] = ..., cache_read_input_tokens: _Optional[int] = ..., cache_creation: _Optional[_Union[CacheCreation, _Mapping]] = ..., server_tool_use: _Optional[_Union[ServerToolUsage, _Mapping]] = ..., service_tier: _Optional[str] = ..., output_tokens_details: _Optional[_Union[OutputTokensDetails, _Mapping]] = ..., inference_geo: _Optional[str] = ..., speed: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CacheCreation(_message.Message):
    __slots__ = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens", "extra_json")
    EPHEMERAL_5M_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_1H_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int
    extra_json: str
    def __init__(self, ephemeral_5m_input_tokens: _Optional[int] = ..., ephemeral_1h_input_tokens: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ServerToolUsage(_message.Message):
    __slots__ = ("web_search_requests", "web_fetch_requests", "extra_json")
    WEB_SEARCH_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    WEB_FETCH_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    web_search_requests: int
    web_fetch_requests: int
    extra_json: str
    def __init__(self, web_search_requests: _Optional[int] = ..., web_fetch_requests: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class OutputTokensDetails(_message.Message):
    __slots__ = ("thinking_tokens", "extra_json")
    THINKING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    thinking_tokens: int
    extra_json: str
    def __init__(self, thinking_tokens: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContainerInfo(_message.Message):
    __slots__ = ("id", "expires_at", "skills", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    expires_at: str
    skills: _containers.RepeatedCompositeFieldContainer[ContainerSkill]
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., expires_at: _Optional[str] = ..., skills: _Optional[_Iterable[_Union[ContainerSkill, _Mapping]]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class Diagnostics(_message.Message):
    __slots__ = ("cache_miss_reason", "extra_json")
    CACHE_MISS_REASON_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    cache_miss_reason: CacheMissReason
    extra_json: str
    def __init__(self, cache_miss_reason: _Optional[_Union[CacheMissReason, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CacheMissReason(_message.Message):
    __slots__ = ("type", "cache_missed_input_tokens", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    cache_missed_input_tokens: int
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., cache_missed_input_tokens: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class StreamEvent(_message.Message):
    __slots__ = ("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "ping", "error", "unknown_json")
    MESSAGE_START_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_START_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_DELTA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_STOP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_DELTA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STOP_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    message_start: MessageStartEvent
    content_block_start: ContentBlockStartEvent
    content_block_delta: ContentBlockDeltaEvent
    content_block_stop: ContentBlockStopEvent
    message_delta: MessageDeltaEvent
    message_stop: MessageStopEvent
    ping: PingEvent
    error: ErrorEvent
    unknown_json: str
    def __init__(self, message_start: _Optional[_Union[MessageStartEvent, _Mapping]] = ..., content_block_start: _Optional[_Union[ContentBlockStartEvent, _Mapping]] = ..., content_block_delta: _Optional[_Union[ContentBlockDeltaEvent, _Mapping]] = ..., content_block_stop: _Optional[_Union[ContentBlockStopEvent, _Mapping]] = ..., message_delta: _Optional[_Union[MessageDeltaEvent, _Mapping]] = ..., message_stop: _Optional[_Union[MessageStopEvent, _Mapping]] = ..., ping: _Optional[_Union[PingEvent, _Mapping]] = ..., error: _Optional[_Union[ErrorEvent, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class MessageStartEvent(_message.Message):
    __slots__ = ("message", "extra_json")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    message: Message
    extra_json: str
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContentBlockStartEvent(_message.Message):
    __slots__ = ("index", "content_block", "extra_json")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    index: int
    content_block: ContentBlock
    extra_json: str
    def __init__(self, index: _Optional[int] = ..., content_block: _Optional[_Union[ContentBlock, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContentBlockDeltaEvent(_message.Message):
    __slots__ = ("index", "delta", "extra_json")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    index: int
    delta: Delta
    extra_json: str
    def __init__(self, index: _Optional[int] = ..., delta: _Optional[_Union[Delta, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContentBlockStopEvent(_message.Message):
    __slots__ = ("index", "extra_json")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    index: int
    extra_json: str
    def __init__(self, index: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageDeltaEvent(_message.Message):
    __slots__ = ("delta", "usage", "extra_json")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    delta: MessageDelta
    usage: Usage
    extra_json: str
    def __init__(self, delta: _Optional[_Union[MessageDelta, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageDelta(_message.Message):
    __slots__ = ("stop_reason", "stop_sequence", "stop_details", "container", "extra_json")
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STOP_DETAILS_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    stop_reason: str
    stop_sequence: str
    stop_details: StopDetails
    container: ContainerInfo
    extra_json: str
    def __init__(self, stop_reason: _Optional[str] = ..., stop_sequence: _Optional[str] = ..., stop_details: _Optional[_Union[StopDetails, _Mapping]] = ..., container: _Optional[_Union[ContainerInfo, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageStopEvent(_message.Message):
    __slots__ = ("extra_json",)
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    extra_json: str
    def __init__(self, extra_json: _Optional[str] = ...) -> None: ...

class PingEvent(_message.Message):
    __slots__ = ("extra_json",)
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    extra_json: str
    def __init__(self, extra_json: _Optional[str] = ...) -> None: ...

class ErrorEvent(_message.Message):
    __slots__ = ("error", "request_id", "extra_json")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    error: ErrorObject
    request_id: str
    extra_json: str
    def __init__(self, error: _Optional[_Union[ErrorObject, _Mapping]] = ..., request_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ErrorObject(_message.Message):
    __slots__ = ("type", "message", "details", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    details: ErrorDetails
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., details: _Optional[_Union[ErrorDetails, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ErrorDetails(_message.Message):
    __slots__ = ("error_code", "extra_json")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    extra_json: str
    def __init__(self, error_code: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class Delta(_message.Message):
    __slots__ = ("text_delta", "input_json_delta", "thinking_delta", "signature_delta", "citations_delta", "compaction_delta", "unknown_json")
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_DELTA_FIELD_NUMBER: _ClassVar[int]
    THINKING_DELTA_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_DELTA_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_DELTA_FIELD_NUMBER: _ClassVar[int]
    COMPACTION_DELTA_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_JSON_FIELD_NUMBER: _ClassVar[int]
    text_delta: TextDelta
    input_json_delta: InputJsonDelta
    thinking_delta: ThinkingDelta
    signature_delta: SignatureDelta
    citations_delta: CitationsDelta
    compaction_delta: CompactionDelta
    unknown_json: str
    def __init__(self, text_delta: _Optional[_Union[TextDelta, _Mapping]] = ..., input_json_delta: _Optional[_Union[InputJsonDelta, _Mapping]] = ..., thinking_delta: _Optional[_Union[ThinkingDelta, _Mapping]] = ..., signature_delta: _Optional[_Union[SignatureDelta, _Mapping]] = ..., citations_delta: _Optional[_Union[CitationsDelta, _Mapping]] = ..., compaction_delta: _Optional[_Union[CompactionDelta, _Mapping]] = ..., unknown_json: _Optional[str] = ...) -> None: ...

class TextDelta(_message.Message):
    __slots__ = ("text", "extra_json")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    text: str
    extra_json: str
    def __init__(self, text: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class InputJsonDelta(_message.Message):
    __slots__ = ("partial_json", "extra_json")
    PARTIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    partial_json: str
    extra_json: str
    def __init__(self, partial_json: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ThinkingDelta(_message.Message):
    __slots__ = ("thinking", "extra_json")
    THINKING_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    thinking: str
    extra_json: str
    def __init__(self, thinking: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class SignatureDelta(_message.Message):
    __slots__ = ("signature", "extra_json")
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    signature: str
    extra_json: str
    def __init__(self, signature: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CitationsDelta(_message.Message):
    __slots__ = ("citation", "extra_json")
    CITATION_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    citation: Citation
    extra_json: str
    def __init__(self, citation: _Optional[_Union[Citation, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CompactionDelta(_message.Message):
    __slots__ = ("content", "encrypted_content", "extra_json")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    content: str
    encrypted_content: str
    extra_json: str
    def __init__(self, content: _Optional[str] = ..., encrypted_content: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CountTokensRequest(_message.Message):
    __slots__ = ("model", "messages", "system_text", "system_blocks", "tools", "tool_choice", "thinking", "cache_control", "output_config", "speed", "context_management", "mcp_servers", "extra_json")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_TEXT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_MANAGEMENT_FIELD_NUMBER: _ClassVar[int]
    MCP_SERVERS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[MessageParam]
    system_text: str
    system_blocks: ContentBlockList
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    tool_choice: ToolChoice
    thinking: Thinking
    cache_control: CacheControl
    output_config: OutputConfig
    speed: str
    context_management: str
    mcp_servers: _containers.RepeatedCompositeFieldContainer[McpServer]
    extra_json: str
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[MessageParam, _Mapping]]] = ..., system_text: _Optional[str] = ..., system_blocks: _Optional[_Union[ContentBlockList, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., tool_choice: _Optional[_Union[ToolChoice, _Mapping]] = ..., thinking: _Optional[_Union[Thinking, _Mapping]] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., output_config: _Optional[_Union[OutputConfig, _Mapping]] = ..., speed: _Optional[str] = ..., context_management: _Optional[str] = ..., mcp_servers: _Optional[_Iterable[_Union[McpServer, _Mapping]]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CountTokensResponse(_message.Message):
    __slots__ = ("input_tokens", "extra_json")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    extra_json: str
    def __init__(self, input_tokens: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("limit", "after_id", "before_id", "lifecycle", "extra_json")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    limit: int
    after_id: str
    before_id: str
    lifecycle: _containers.RepeatedScalarFieldContainer[str]
    extra_json: str
    def __init__(self, limit: _Optional[int] = ..., after_id: _Optional[str] = ..., before_id: _Optional[str] = ..., lifecycle: _Optional[_Iterable[str]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("data", "has_more", "first_id", "last_id", "extra_json")
    DATA_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    FIRST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    has_more: bool
    first_id: str
    last_id: str
    extra_json: str
    def __init__(self, data: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., has_more: _Optional[bool] = ..., first_id: _Optional[str] = ..., last_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("type", "id", "display_name", "created_at", "max_input_tokens", "max_tokens", "lifecycle", "deprecated_at", "retires_at", "line", "capabilities", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
    DEPRECATED_AT_FIELD_NUMBER: _ClassVar[int]
    RETIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    display_name: str
    created_at: str
    max_input_tokens: int
    max_tokens: int
    lifecycle: str
    deprecated_at: str
    retires_at: str
    line: str
    capabilities: ModelCapabilities
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ..., display_name: _Optional[str] = ..., created_at: _Optional[str] = ..., max_input_tokens: _Optional[int] = ..., max_tokens: _Optional[int] = ..., lifecycle: _Optional[str] = ..., deprecated_at: _Optional[str] = ..., retires_at: _Optional[str] = ..., line: _Optional[str] = ..., capabilities: _Optional[_Union[ModelCapabilities, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ModelCapabilities(_message.Message):
    __slots__ = ("batch", "citations", "code_execution", "context_management", "effort", "image_input", "pdf_input", "server_tools", "structured_outputs", "thinking", "extra_json")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    CODE_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_MANAGEMENT_FIELD_NUMBER: _ClassVar[int]
    EFFORT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_INPUT_FIELD_NUMBER: _ClassVar[int]
    PDF_INPUT_FIELD_NUMBER: _ClassVar[int]
    SERVER_TOOLS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    batch: CapabilitySupport
    citations: CapabilitySupport
    code_execution: CapabilitySupport
    context_management: CapabilitySupport
    effort: EffortCapability
    image_input: CapabilitySupport
    pdf_input: CapabilitySupport
    server_tools: CapabilitySupport
    structured_outputs: CapabilitySupport
    thinking: ThinkingCapability
    extra_json: str
    def __init__(self, batch: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., citations: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., code_execution: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., context_management: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., effort: _Optional[_Union[EffortCapability, _Mapping]] = ..., image_input: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., pdf_input: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., server_tools: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., structured_outputs: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., thinking: _Optional[_Union[ThinkingCapability, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CapabilitySupport(_message.Message):
    __slots__ = ("supported", "extra_json")
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    supported: bool
    extra_json: str
    def __init__(self, supported: _Optional[bool] = ..., extra_json: _Optional[str] = ...) -> None: ...

class EffortCapability(_message.Message):
    __slots__ = ("supported", "low", "medium", "high", "xhigh", "max", "extra_json")
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    XHIGH_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    supported: bool
    low: CapabilitySupport
    medium: CapabilitySupport
    high: CapabilitySupport
    xhigh: CapabilitySupport
    max: CapabilitySupport
    extra_json: str
    def __init__(self, supported: _Optional[bool] = ..., low: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., medium: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., high: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., xhigh: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., max: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ThinkingCapability(_message.Message):
    __slots__ = ("supported", "types", "extra_json")
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    supported: bool
    types: ThinkingTypes
    extra_json: str
    def __init__(self, supported: _Optional[bool] = ..., types: _Optional[_Union[ThinkingTypes, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ThinkingTypes(_message.Message):
    __slots__ = ("enabled", "adaptive", "disabled", "between_tools", "extra_json")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ADAPTIVE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    BETWEEN_TOOLS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    enabled: CapabilitySupport
    adaptive: CapabilitySupport
    disabled: CapabilitySupport
    between_tools: CapabilitySupport
    extra_json: str
    def __init__(self, enabled: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., adaptive: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., disabled: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., between_tools: _Optional[_Union[CapabilitySupport, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...
