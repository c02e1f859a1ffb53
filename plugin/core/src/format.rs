//! The three request formats, parsed with borrowed serde types into one normalized view.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::decision::FailOpen;
use crate::endpoint::Endpoint;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiFormat {
    OpenAiChat,
    OpenAiResponses,
    AnthropicMessages,
}

impl ApiFormat {
    pub const ALL: [ApiFormat; 3] = [
        ApiFormat::OpenAiChat,
        ApiFormat::OpenAiResponses,
        ApiFormat::AnthropicMessages,
    ];

    /// POST to /v1/chat/completions, /v1/responses, /v1/messages, however the path is spelled
    /// ([`Endpoint::of`]) -> Some(format).
    pub fn detect(method: &str, path: &str) -> Option<ApiFormat> {
        Endpoint::of(method, path).map(|endpoint| endpoint.format)
    }

    /// The API path requests of this format are sent to.
    pub fn path(&self) -> &'static str {
        match self {
            ApiFormat::OpenAiChat => "/v1/chat/completions",
            ApiFormat::OpenAiResponses => "/v1/responses",
            ApiFormat::AnthropicMessages => "/v1/messages",
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ApiFormat::OpenAiChat => "openai_chat",
            ApiFormat::OpenAiResponses => "openai_responses",
            ApiFormat::AnthropicMessages => "anthropic_messages",
        }
    }

    /// The inverse of [`ApiFormat::as_str`].
    pub fn from_name(name: &str) -> Option<ApiFormat> {
        ApiFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// Tool results, whatever the format calls them.
    Tool,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub role: Role,
    pub texts: Vec<Cow<'a, str>>,
}

impl Message<'_> {
    pub fn text_bytes(&self) -> usize {
        self.texts.iter().map(|text| text.len()).sum()
    }
}

/// What the router needs from a request body, whatever its format.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedRequest<'a> {
    pub model: Option<Cow<'a, str>>,
    /// System prompt texts (Anthropic `system`, Responses `instructions`, system/developer messages).
    pub system: Vec<Cow<'a, str>>,
    /// Conversation messages in order, system messages excluded; a message without text is left out.
    pub messages: Vec<Message<'a>>,
    pub tools_defined: usize,
    /// Tool calls made by the assistant in the history.
    pub tool_calls: usize,
    pub tool_results: usize,
    pub images: usize,
    /// Bytes of JSON that count as prompt but are not text: tool definitions and tool-call arguments.
    pub structured_bytes: usize,
    pub max_output_tokens: Option<f64>,
    /// 0 (none) ..= 1 (high).
    pub reasoning_effort: Option<f64>,
    pub json_output: bool,
    pub stream: bool,
}

impl<'a> ParsedRequest<'a> {
    pub fn last_user_message(&self) -> Option<&Message<'a>> {
        self.messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
    }

    pub fn user_turns(&self) -> usize {
        self.messages
            .iter()
            .filter(|message| message.role == Role::User)
            .count()
    }
}

/// Parses `body` as a request of `format`; the error says why the router must fail open.
pub fn parse_request(format: ApiFormat, body: &[u8]) -> Result<ParsedRequest<'_>, FailOpen> {
    let Some(first) = body.iter().find(|byte| !byte.is_ascii_whitespace()) else {
        return Err(FailOpen::EmptyBody);
    };
    // serde accepts a JSON array for a struct; a request body is always an object.
    if *first != b'{' {
        return Err(shape_or_syntax(body));
    }
    let parsed = match format {
        ApiFormat::OpenAiChat => serde_json::from_slice::<ChatBody>(body).map(ChatBody::normalize),
        ApiFormat::OpenAiResponses => {
            serde_json::from_slice::<ResponsesBody>(body).map(ResponsesBody::normalize)
        }
        ApiFormat::AnthropicMessages => {
            serde_json::from_slice::<AnthropicBody>(body).map(AnthropicBody::normalize)
        }
    };
    parsed.map_err(|error| match error.classify() {
        serde_json::error::Category::Data => shape_or_syntax(body),
        _ => FailOpen::InvalidJson,
    })
}

/// A typed parse stops at the first wrong type, before it has seen the rest: tell the two apart.
fn shape_or_syntax(body: &[u8]) -> FailOpen {
    match serde_json::from_slice::<IgnoredAny>(body) {
        Ok(_) => FailOpen::UnknownShape,
        Err(_) => FailOpen::InvalidJson,
    }
}

/// The requested model of a body that is a JSON object but not of the format's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ModelField<'a> {
    Absent,
    Named(Cow<'a, str>),
    /// Not a string, or the body is not a JSON object.
    Unusable,
}

pub(crate) fn probe_model(body: &[u8]) -> ModelField<'_> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        model: Option<&'a RawValue>,
    }
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return ModelField::Unusable;
    }
    match serde_json::from_slice::<Probe>(body) {
        Ok(Probe { model: None }) => ModelField::Absent,
        Ok(Probe { model: Some(raw) }) => match serde_json::from_str::<Cow<str>>(raw.get()) {
            Ok(name) => ModelField::Named(name),
            Err(_) => ModelField::Unusable,
        },
        Err(_) => ModelField::Unusable,
    }
}

// ---- shared pieces -------------------------------------------------------------------------------

/// A string or a list; a hand-written visitor rather than `#[serde(untagged)]`, which buffers the
/// value and so can neither borrow strings nor hold `RawValue`s.
enum StringOr<'a, T> {
    Text(Cow<'a, str>),
    List(Vec<T>),
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for StringOr<'a, T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = StringOr<'de, T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(StringOr::Text(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(StringOr::Text(Cow::Owned(text.to_string())))
            }

            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(StringOr::Text(Cow::Owned(text)))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(StringOr::List(items))
            }
        }

        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

type Content<'a> = StringOr<'a, Part<'a>>;

/// A content part or block of any of the formats; unknown kinds with a `text` count as text.
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    /// Anthropic `tool_result` content.
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    /// Anthropic `tool_use` arguments.
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

impl TypeOnly<'_> {
    fn asks_json(&self) -> bool {
        matches!(self.kind.as_deref(), Some("json_object" | "json_schema"))
    }
}

fn effort_level(effort: &str) -> Option<f64> {
    match effort {
        "none" => Some(0.0),
        "minimal" => Some(0.15),
        "low" => Some(0.33),
        "medium" => Some(0.67),
        "high" | "xhigh" | "max" => Some(1.0),
        _ => None,
    }
}

fn raw_bytes(values: &Option<Vec<&RawValue>>) -> usize {
    values.iter().flatten().map(|value| value.get().len()).sum()
}

/// Accumulates the normalized view while walking a body.
#[derive(Default)]
struct Builder<'a> {
    request: ParsedRequest<'a>,
}

impl<'a> Builder<'a> {
    fn role(name: &str) -> Option<Role> {
        match name {
            "system" | "developer" => None,
            "user" => Some(Role::User),
            "assistant" | "model" => Some(Role::Assistant),
            "tool" | "function" => Some(Role::Tool),
            _ => Some(Role::Other),
        }
    }

    /// Adds a message; `None` role means a system message.
    fn message(&mut self, role: Option<Role>, content: Option<Content<'a>>) {
        let mut texts = Vec::new();
        let mut tool_texts = Vec::new();
        match content {
            Some(StringOr::Text(text)) => texts.push(text),
            Some(StringOr::List(parts)) => self.parts(parts, &mut texts, &mut tool_texts),
            None => {}
        }
        if !tool_texts.is_empty() {
            self.push(Some(Role::Tool), tool_texts);
        }
        if role == Some(Role::Tool) {
            self.request.tool_results += 1;
        }
        self.push(role, texts);
    }

    fn push(&mut self, role: Option<Role>, texts: Vec<Cow<'a, str>>) {
        match role {
            None => self.request.system.extend(texts),
            Some(_) if texts.is_empty() => {}
            Some(role) => self.request.messages.push(Message { role, texts }),
        }
    }

    fn parts(
        &mut self,
        parts: Vec<Part<'a>>,
        texts: &mut Vec<Cow<'a, str>>,
        tool_texts: &mut Vec<Cow<'a, str>>,
    ) {
        for part in parts {
            match part.kind.as_deref() {
                Some("image" | "image_url" | "input_image") => self.request.images += 1,
                Some("tool_use" | "server_tool_use") => {
                    self.request.tool_calls += 1;
                    self.request.structured_bytes +=
                        part.input.map_or(0, |input| input.get().len());
                }
                Some("tool_result") => {
                    self.request.tool_results += 1;
                    match part.content {
                        Some(StringOr::Text(text)) => tool_texts.push(text),
                        Some(StringOr::List(inner)) => {
                            let mut nested_tools = Vec::new();
                            self.parts(inner, tool_texts, &mut nested_tools);
                            tool_texts.append(&mut nested_tools);
                        }
                        None => {}
                    }
                }
                _ => texts.extend(part.text),
            }
        }
    }

    fn tools(&mut self, tools: &Option<Vec<&RawValue>>) {
        self.request.tools_defined += tools.as_ref().map_or(0, Vec::len);
        self.request.structured_bytes += raw_bytes(tools);
    }

    fn tool_calls(&mut self, calls: &Option<Vec<&RawValue>>) {
        self.request.tool_calls += calls.as_ref().map_or(0, Vec::len);
        self.request.structured_bytes += raw_bytes(calls);
    }
}

// ---- OpenAI chat completions ---------------------------------------------------------------------

#[derive(Deserialize)]
struct ChatBody<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    messages: Vec<ChatMessage<'a>>,
    #[serde(borrow, default)]
    tools: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    functions: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    max_tokens: Option<f64>,
    #[serde(default)]
    max_completion_tokens: Option<f64>,
    #[serde(borrow, default)]
    reasoning_effort: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    response_format: Option<TypeOnly<'a>>,
    #[serde(default)]
    stream: Option<bool>,
}

#[derive(Deserialize)]
struct ChatMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    function_call: Option<&'a RawValue>,
}

impl<'a> ChatBody<'a> {
    fn normalize(self) -> ParsedRequest<'a> {
        let mut builder = Builder::default();
        for message in self.messages {
            builder.tool_calls(&message.tool_calls);
            builder.tool_calls(&message.function_call.map(|call| vec![call]));
            builder.message(Builder::role(&message.role), message.content);
        }
        builder.tools(&self.tools);
        builder.tools(&self.functions);
        let request = &mut builder.request;
        request.model = self.model;
        request.max_output_tokens = self.max_completion_tokens.or(self.max_tokens);
        request.reasoning_effort = self.reasoning_effort.as_deref().and_then(effort_level);
        request.json_output = self
            .response_format
            .is_some_and(|format| format.asks_json());
        request.stream = self.stream.unwrap_or(false);
        builder.request
    }
}

// ---- OpenAI responses ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct ResponsesBody<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    input: ResponsesInput<'a>,
    #[serde(borrow, default)]
    instructions: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tools: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    max_output_tokens: Option<f64>,
    #[serde(borrow, default)]
    reasoning: Option<ReasoningSpec<'a>>,
    #[serde(borrow, default)]
    text: Option<TextSpec<'a>>,
    #[serde(default)]
    stream: Option<bool>,
}

type ResponsesInput<'a> = StringOr<'a, ResponsesItem<'a>>;

#[derive(Deserialize)]
struct ResponsesItem<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output: Option<Content<'a>>,
}

#[derive(Deserialize)]
struct ReasoningSpec<'a> {
    #[serde(borrow, default)]
    effort: Option<Cow<'a, str>>,
}

/// Responses `text` and Anthropic `output_config`: both name the output format in `format`.
#[derive(Deserialize)]
struct TextSpec<'a> {
    #[serde(borrow, default)]
    format: Option<TypeOnly<'a>>,
}

impl TextSpec<'_> {
    fn asks_json(&self) -> bool {
        self.format.as_ref().is_some_and(TypeOnly::asks_json)
    }
}

impl<'a> ResponsesBody<'a> {
    fn normalize(self) -> ParsedRequest<'a> {
        let mut builder = Builder::default();
        builder.request.system.extend(self.instructions);
        match self.input {
            StringOr::Text(text) => builder.push(Some(Role::User), vec![text]),
            StringOr::List(items) => {
                for item in items {
                    match (item.kind.as_deref(), item.role.as_deref()) {
                        (Some("function_call" | "custom_tool_call"), _) => {
                            builder.tool_calls(&item.arguments.map(|arguments| vec![arguments]));
                        }
                        (Some("function_call_output" | "custom_tool_call_output"), _) => {
                            builder.message(Some(Role::Tool), item.output);
                        }
                        (_, Some(role)) => builder.message(Builder::role(role), item.content),
                        _ => {}
                    }
                }
            }
        }
        builder.tools(&self.tools);
        let request = &mut builder.request;
        request.model = self.model;
        request.max_output_tokens = self.max_output_tokens;
        request.reasoning_effort = self
            .reasoning
            .and_then(|reasoning| reasoning.effort)
            .and_then(|effort| effort_level(&effort));
        request.json_output = self.text.is_some_and(|text| text.asks_json());
        request.stream = self.stream.unwrap_or(false);
        builder.request
    }
}

// ---- Anthropic messages --------------------------------------------------------------------------

#[derive(Deserialize)]
struct AnthropicBody<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    messages: Vec<AnthropicMessage<'a>>,
    #[serde(borrow, default)]
    system: Option<Content<'a>>,
    #[serde(borrow, default)]
    tools: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    max_tokens: Option<f64>,
    #[serde(borrow, default)]
    thinking: Option<ThinkingSpec<'a>>,
    /// Structured outputs: `output_config.format`, or the beta's `output_format`.
    #[serde(borrow, default)]
    output_config: Option<TextSpec<'a>>,
    #[serde(borrow, default)]
    output_format: Option<TypeOnly<'a>>,
    #[serde(default)]
    stream: Option<bool>,
}

#[derive(Deserialize)]
struct AnthropicMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
}

#[derive(Deserialize)]
struct ThinkingSpec<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    budget_tokens: Option<f64>,
}

impl ThinkingSpec<'_> {
    fn effort(&self) -> Option<f64> {
        match (self.kind.as_deref(), self.budget_tokens) {
            (Some("disabled"), _) => Some(0.0),
            (_, Some(budget)) if budget <= 2048.0 => Some(0.33),
            (_, Some(budget)) if budget <= 8192.0 => Some(0.67),
            (Some("enabled"), _) | (_, Some(_)) => Some(1.0),
            _ => None,
        }
    }
}

impl<'a> AnthropicBody<'a> {
    fn normalize(self) -> ParsedRequest<'a> {
        let mut builder = Builder::default();
        builder.message(None, self.system);
        for message in self.messages {
            builder.message(Builder::role(&message.role), message.content);
        }
        builder.tools(&self.tools);
        let request = &mut builder.request;
        request.model = self.model;
        request.max_output_tokens = self.max_tokens;
        request.reasoning_effort = self.thinking.and_then(|thinking| thinking.effort());
        request.json_output = self.output_config.is_some_and(|config| config.asks_json())
            || self.output_format.is_some_and(|format| format.asks_json());
        request.stream = self.stream.unwrap_or(false);
        builder.request
    }
}

#[cfg(test)]
mod tests;
