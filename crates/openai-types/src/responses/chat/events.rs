//! Chat stream items as the Responses API's event sequence.

use super::*;

/// Chat stream items (choice 0) as Responses events: `response.created`,
/// `response.in_progress`, then per output item `output_item.added`, its
/// deltas (`output_text.delta`, `reasoning_text.delta`,
/// `function_call_arguments.delta`) and closing events, then
/// `response.completed` (or `response.incomplete`); a failure is an `error`
/// event and `response.failed`. Every event carries its `sequence_number`.
#[derive(Debug)]
pub struct EventWriter {
    response: Response,
    seq: u64,
    started: bool,
    open: Open,
    finish: Option<FinishReason>,
}

impl EventWriter {
    /// A writer for the response `base` (see [`response_base`]).
    pub fn new(base: Response) -> Self {
        Self {
            response: base,
            seq: 0,
            started: false,
            open: Open::None,
            finish: None,
        }
    }

    /// Appends the events one item produces to `out`.
    pub fn write(&mut self, item: &StreamItem, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            let r = self.response.clone();
            self.event(out, "response.created", json!({"response": r}));
            self.event(out, "response.in_progress", json!({"response": r}));
        }
        match item {
            StreamItem::Choice(c) if c.index == 0 => {
                let d = &c.delta;
                if let Some(r) = d.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
                    self.reasoning(r, out);
                }
                if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                    self.text(t, out);
                }
                for call in d.tool_calls.iter().flatten() {
                    let f = call.function.as_ref();
                    self.call(
                        call.index,
                        call.id.as_deref(),
                        f.and_then(|f| f.name.as_deref()),
                        f.and_then(|f| f.arguments.as_deref()).unwrap_or(""),
                        out,
                    );
                }
                if c.finish_reason.is_some() {
                    self.finish = c.finish_reason;
                }
            }
            StreamItem::Choice(_) => {}
            StreamItem::Usage(u) => self.response.usage = Some(ResponseUsage::from(u)),
            StreamItem::Done => {
                self.close(out);
                finished(&mut self.response, self.finish);
                let kind = if self.response.status == "incomplete" {
                    "response.incomplete"
                } else {
                    "response.completed"
                };
                let r = self.response.clone();
                self.event(out, kind, json!({"response": r}));
            }
            StreamItem::Error(e) => self.failed(e, out),
        }
    }

    fn failed(&mut self, e: &ErrorResponse, out: &mut BytesMut) {
        self.close_as(out, "incomplete");
        let code = e
            .error
            .code
            .clone()
            .unwrap_or_else(|| "server_error".into());
        self.event(
            out,
            "error",
            json!({"code": code, "message": e.error.message, "param": e.error.param}),
        );
        self.response.status = "failed".into();
        self.response.error = Some(ResponseError {
            code: if code == "rate_limit_exceeded" {
                code
            } else {
                "server_error".into()
            },
            message: e.error.message.clone(),
        });
        let r = self.response.clone();
        self.event(out, "response.failed", json!({"response": r}));
    }

    fn item_id(&self, prefix: &str, index: usize) -> String {
        format!(
            "{prefix}_{}_{index}",
            self.response.id.trim_start_matches("resp_")
        )
    }

    fn add(&mut self, item: OutputItem, out: &mut BytesMut) -> usize {
        let index = self.response.output.len();
        self.event(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        self.response.output.push(item);
        index
    }

    fn reasoning(&mut self, delta: &str, out: &mut BytesMut) {
        let index = match self.open {
            Open::Reasoning(i) => i,
            _ => {
                self.close(out);
                let id = self.item_id("rs", self.response.output.len());
                let i = self.add(
                    OutputItem::Reasoning {
                        id,
                        summary: Vec::new(),
                        content: Vec::new(),
                    },
                    out,
                );
                self.open = Open::Reasoning(i);
                i
            }
        };
        if let OutputItem::Reasoning { id, content, .. } = &mut self.response.output[index] {
            match content.first_mut() {
                Some(t) => t.text.push_str(delta),
                None => content.push(ReasoningText {
                    kind: "reasoning_text".into(),
                    text: delta.into(),
                }),
            }
            let id = id.clone();
            self.event(
                out,
                "response.reasoning_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta}),
            );
        }
    }

    fn text(&mut self, delta: &str, out: &mut BytesMut) {
        let index = match self.open {
            Open::Message(i) => i,
            _ => {
                self.close(out);
                let id = self.item_id("msg", self.response.output.len());
                let item = OutputItem::Message {
                    id: id.clone(),
                    status: "in_progress".into(),
                    role: "assistant".into(),
                    content: Vec::new(),
                };
                let i = self.add(item, out);
                self.event(out, "response.content_part.added", json!({"item_id": id, "output_index": i, "content_index": 0, "part": output_text(String::new())}));
                self.open = Open::Message(i);
                i
            }
        };
        if let OutputItem::Message { id, content, .. } = &mut self.response.output[index] {
            match content.first_mut() {
                Some(OutputContent::OutputText { text, .. }) => text.push_str(delta),
                _ => content.push(output_text(delta.into())),
            }
            let id = id.clone();
            self.event(out, "response.output_text.delta", json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}));
        }
    }

    fn call(
        &mut self,
        k: u32,
        call_id: Option<&str>,
        name: Option<&str>,
        args: &str,
        out: &mut BytesMut,
    ) {
        let index = match self.open {
            Open::Call(i, open_k) if open_k == k => i,
            _ => {
                self.close(out);
                let id = self.item_id("fc", self.response.output.len());
                let item = OutputItem::FunctionCall {
                    id,
                    call_id: call_id.map_or_else(|| format!("call_{k}"), str::to_owned),
                    name: name.unwrap_or_default().to_owned(),
                    arguments: String::new(),
                    status: "in_progress".into(),
                };
                let i = self.add(item, out);
                self.open = Open::Call(i, k);
                i
            }
        };
        if args.is_empty() {
            return;
        }
        if let OutputItem::FunctionCall { id, arguments, .. } = &mut self.response.output[index] {
            arguments.push_str(args);
            let id = id.clone();
            self.event(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": args}),
            );
        }
    }

    /// Closes the open item: its done events and `output_item.done`.
    fn close(&mut self, out: &mut BytesMut) {
        self.close_as(out, "completed");
    }

    fn close_as(&mut self, out: &mut BytesMut, end: &str) {
        let index = match std::mem::replace(&mut self.open, Open::None) {
            Open::None => return,
            Open::Reasoning(i) | Open::Message(i) | Open::Call(i, _) => i,
        };
        let mut item = self.response.output[index].clone();
        match &mut item {
            OutputItem::Reasoning { id, content, .. } => {
                let text = content.first().map(|t| t.text.clone()).unwrap_or_default();
                self.event(
                    out,
                    "response.reasoning_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text}),
                );
            }
            OutputItem::Message {
                id,
                status,
                content,
                ..
            } => {
                let part = content
                    .first()
                    .cloned()
                    .unwrap_or_else(|| output_text(String::new()));
                if let OutputContent::OutputText { text, .. } = &part {
                    self.event(out, "response.output_text.done", json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}));
                }
                self.event(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                *status = end.into();
            }
            OutputItem::FunctionCall {
                id,
                name,
                arguments,
                status,
                ..
            } => {
                self.event(out, "response.function_call_arguments.done", json!({"item_id": id, "name": name, "output_index": index, "arguments": arguments}));
                *status = end.into();
            }
        }
        self.response.output[index] = item.clone();
        self.event(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
    }

    fn event(&mut self, out: &mut BytesMut, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Serializing a Value into memory cannot fail.
        let _ = serde_json::to_writer((&mut *out).writer(), &body);
        out.extend_from_slice(b"\n\n");
    }
}
