//! The language server: `stagecraft lsp` (`spec/editors.md`).
//!
//! It speaks LSP over stdin and stdout with `lsp-server` and `lsp-types`,
//! keeps the open documents' text, and answers from the library's layers as
//! they are: diagnostics come from [`crate::graph::compile`] (the same values
//! `check` prints), formatting from [`crate::syntax::format`], hovers on
//! phases from the compiled pipeline and graph. Definition, references and
//! the outline read an [`index::Index`] of the file's names built from its
//! AST; completion scans the text without parsing it, because the file is
//! usually broken while it is typed.
//!
//! Robustness: client input is never unwrapped; every message is handled
//! under `catch_unwind`, so a bug on one file answers one request with an
//! error and the server goes on. A request about a file that does not parse
//! gets an empty answer (`null` or `[]`).
//!
//! Speed: diagnostics are published once the queue of incoming messages is
//! empty, so a burst of changes is compiled once, for the last text.

mod complete;
mod diagnostics;
mod index;
mod position;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, References, Request as _,
};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionParams, CompletionResponse,
    DocumentFormattingParams, DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse, GotoDefinitionParams,
    GotoDefinitionResponse, Hover, HoverContents, HoverParams, HoverProviderCapability, InitializeResult, Location,
    MarkupContent, MarkupKind, OneOf, PublishDiagnosticsParams, Range, ReferenceParams, ServerCapabilities, ServerInfo,
    SymbolKind, TextDocumentContentChangeEvent, TextDocumentPositionParams, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextEdit, Uri,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use complete::{Item, complete};
pub use index::{Index, Kind, Occurrence};

use crate::graph::{self, instance_id};
use crate::syntax::LineIndex;

/// An error that ends the server: the connection failed.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs the server on stdin and stdout until the client says `exit`.
/// Returns whether the client asked for `shutdown` first (the process should
/// exit 0 if so, 1 if not).
///
/// # Errors
///
/// The connection failed (stdin closed before `initialize`, bad framing).
pub fn run_stdio() -> Result<bool, Error> {
    let (connection, io_threads) = Connection::stdio();
    let clean = serve(&connection)?;
    drop(connection);
    io_threads.join()?;
    Ok(clean)
}

/// What the server offers, sent in answer to `initialize`.
#[must_use]
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::INCREMENTAL)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["{".to_owned(), ".".to_owned(), "[".to_owned()]),
            ..CompletionOptions::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Serves one connection: the `initialize` handshake, then messages until
/// `exit`. Returns whether `shutdown` came first.
///
/// # Errors
///
/// The connection failed.
pub fn serve(connection: &Connection) -> Result<bool, Error> {
    let result = InitializeResult {
        capabilities: capabilities(),
        server_info: Some(ServerInfo {
            name: "stagecraft".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
    };
    let (id, _params) = connection.initialize_start()?;
    connection.initialize_finish(id, serde_json::to_value(result)?)?;
    let mut server = Server::default();
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                let response = if server.shutdown {
                    Response::new_err(
                        request.id,
                        ErrorCode::InvalidRequest as i32,
                        "the server is shutting down".to_owned(),
                    )
                } else if request.method == "shutdown" {
                    server.shutdown = true;
                    Response::new_ok(request.id, ())
                } else {
                    let id = request.id.clone();
                    catch_unwind(AssertUnwindSafe(|| server.request(request))).unwrap_or_else(|_| {
                        Response::new_err(
                            id,
                            ErrorCode::InternalError as i32,
                            "stagecraft panicked (a bug)".to_owned(),
                        )
                    })
                };
                connection.sender.send(response.into())?;
            }
            Message::Notification(notification) => {
                if notification.method == "exit" {
                    return Ok(server.shutdown);
                }
                let uri = notification_uri(&notification);
                if catch_unwind(AssertUnwindSafe(|| server.notification(notification))).is_err() {
                    // The document may be half updated: forget it rather
                    // than answer from a wrong text.
                    if let Some(uri) = uri {
                        server.documents.remove(&uri);
                        server.dirty.remove(&uri);
                    }
                }
            }
            Message::Response(_) => {}
        }
        if connection.receiver.is_empty() {
            for notification in server.publish() {
                connection.sender.send(notification.into())?;
            }
        }
    }
    Ok(server.shutdown)
}

fn notification_uri(notification: &Notification) -> Option<String> {
    notification
        .params
        .get("textDocument")?
        .get("uri")?
        .as_str()
        .map(str::to_owned)
}

/// An open document.
struct Document {
    uri: Uri,
    version: i32,
    text: String,
    lines: LineIndex,
    /// The names of the file, built on first use after each change.
    names: Names,
}

impl Document {
    fn new(uri: Uri, version: i32, text: String) -> Self {
        Self {
            uri,
            version,
            lines: LineIndex::new(&text),
            text,
            names: Names::Stale,
        }
    }

    fn apply(&mut self, version: i32, changes: Vec<TextDocumentContentChangeEvent>) {
        for change in changes {
            match change.range {
                Some(range) => {
                    let span = position::span(&self.lines, &self.text, range);
                    self.text.replace_range(span.start()..span.end(), &change.text);
                }
                None => self.text = change.text,
            }
            self.lines = LineIndex::new(&self.text);
        }
        self.version = version;
        self.names = Names::Stale;
    }

    fn index(&mut self) -> Option<&Index> {
        if matches!(self.names, Names::Stale) {
            self.names = Index::build(&self.text).map_or(Names::Unparsable, Names::Ready);
        }
        self.built()
    }

    /// The index if it is built (call [`Document::index`] first).
    fn built(&self) -> Option<&Index> {
        match &self.names {
            Names::Ready(index) => Some(index),
            Names::Stale | Names::Unparsable => None,
        }
    }

    fn offset(&self, position: lsp_types::Position) -> usize {
        position::offset(&self.lines, &self.text, position)
    }

    fn location(&self, span: crate::syntax::Span) -> Location {
        Location::new(self.uri.clone(), self.range(span))
    }

    fn range(&self, span: crate::syntax::Span) -> Range {
        position::range(&self.lines, &self.text, span)
    }

    fn name(&self, occurrence: Occurrence) -> &str {
        &self.text[occurrence.span.start()..occurrence.span.end()]
    }
}

/// The [`Index`] of a document's current text.
enum Names {
    /// Not built since the last change.
    Stale,
    /// The text does not parse.
    Unparsable,
    /// Built.
    Ready(Index),
}

#[derive(Default)]
struct Server {
    /// Open documents by URI.
    documents: BTreeMap<String, Document>,
    /// Documents whose diagnostics are not published yet.
    dirty: BTreeSet<String>,
    shutdown: bool,
}

impl Server {
    fn notification(&mut self, notification: Notification) {
        match notification.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(params) = parse::<lsp_types::DidOpenTextDocumentParams>(notification.params) {
                    let document = params.text_document;
                    let key = document.uri.as_str().to_owned();
                    self.documents.insert(
                        key.clone(),
                        Document::new(document.uri, document.version, document.text),
                    );
                    self.dirty.insert(key);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(params) = parse::<lsp_types::DidChangeTextDocumentParams>(notification.params) {
                    let key = params.text_document.uri.as_str().to_owned();
                    if let Some(document) = self.documents.get_mut(&key) {
                        document.apply(params.text_document.version, params.content_changes);
                        self.dirty.insert(key);
                    }
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(params) = parse::<lsp_types::DidCloseTextDocumentParams>(notification.params) {
                    let key = params.text_document.uri.as_str().to_owned();
                    self.documents.remove(&key);
                    self.dirty.remove(&key);
                }
            }
            _ => {}
        }
    }

    /// Diagnostics of every document changed since the last call.
    fn publish(&mut self) -> Vec<Notification> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::new();
        for key in dirty {
            let Some(document) = self.documents.get(&key) else {
                continue;
            };
            let compilation = graph::compile(&document.text);
            let diagnostics = compilation
                .diagnostics
                .iter()
                .map(|d| diagnostics::to_lsp(d, &document.uri, &document.text, &document.lines))
                .collect();
            let params = PublishDiagnosticsParams {
                uri: document.uri.clone(),
                diagnostics,
                version: Some(document.version),
            };
            out.push(Notification::new(PublishDiagnostics::METHOD.to_owned(), params));
        }
        out
    }

    fn request(&mut self, request: Request) -> Response {
        let id = request.id.clone();
        match request.method.as_str() {
            GotoDefinition::METHOD => answer(id, request.params, |p| self.definition(&p)),
            References::METHOD => answer(id, request.params, |p| self.references(&p)),
            HoverRequest::METHOD => answer(id, request.params, |p| self.hover(&p)),
            Completion::METHOD => answer(id, request.params, |p| self.completion(&p)),
            DocumentSymbolRequest::METHOD => answer(id, request.params, |p| self.symbols(&p)),
            Formatting::METHOD => answer(id, request.params, |p| self.formatting(&p)),
            method => Response::new_err(
                id,
                ErrorCode::MethodNotFound as i32,
                format!("unknown method `{method}`"),
            ),
        }
    }

    fn document(&mut self, uri: &Uri) -> Option<&mut Document> {
        self.documents.get_mut(uri.as_str())
    }

    /// The document and the name under the cursor.
    fn at(&mut self, position: &TextDocumentPositionParams) -> Option<(&mut Document, Occurrence)> {
        let document = self.document(&position.text_document.uri)?;
        let offset = document.offset(position.position);
        let occurrence = document.index()?.at(offset)?;
        Some((document, occurrence))
    }

    fn definition(&mut self, params: &GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
        let (document, occurrence) = self.at(&params.text_document_position_params)?;
        let index = document.built()?;
        let locations: Vec<Location> = index
            .same(&document.text, occurrence)
            .filter(|o| o.definition)
            .map(|o| document.location(o.span))
            .collect();
        match locations.len() {
            0 => None,
            1 => locations.into_iter().next().map(GotoDefinitionResponse::Scalar),
            _ => Some(GotoDefinitionResponse::Array(locations)),
        }
    }

    fn references(&mut self, params: &ReferenceParams) -> Option<Vec<Location>> {
        let declarations = params.context.include_declaration;
        let Some((document, occurrence)) = self.at(&params.text_document_position) else {
            return Some(Vec::new());
        };
        let index = document.built()?;
        Some(
            index
                .same(&document.text, occurrence)
                .filter(|o| declarations || !o.definition)
                .map(|o| document.location(o.span))
                .collect(),
        )
    }

    fn hover(&mut self, params: &HoverParams) -> Option<Hover> {
        let (document, occurrence) = self.at(&params.text_document_position_params)?;
        let text = match occurrence.kind {
            Kind::Phase => phase_hover(&document.text, document.name(occurrence))?,
            _ => name_hover(document, occurrence)?,
        };
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: text,
            }),
            range: Some(document.range(occurrence.span)),
        })
    }

    fn completion(&mut self, params: &CompletionParams) -> Option<CompletionResponse> {
        let position = &params.text_document_position;
        let document = self.document(&position.text_document.uri)?;
        let offset = document.offset(position.position);
        let items = complete(&document.text, offset)
            .into_iter()
            .map(|(name, item)| {
                let (kind, detail) = match item {
                    Item::Phase => (CompletionItemKind::FUNCTION, "phase"),
                    Item::Service => (CompletionItemKind::MODULE, "service"),
                    Item::Env => (CompletionItemKind::ENUM_MEMBER, "env"),
                    Item::Var => (CompletionItemKind::VARIABLE, "variable"),
                    Item::Builtin => (CompletionItemKind::CONSTANT, "built-in variable"),
                    Item::Attr => (CompletionItemKind::PROPERTY, "service attribute"),
                };
                CompletionItem {
                    label: name,
                    kind: Some(kind),
                    detail: Some(detail.to_owned()),
                    ..CompletionItem::default()
                }
            })
            .collect();
        Some(CompletionResponse::Array(items))
    }

    fn symbols(&mut self, params: &DocumentSymbolParams) -> Option<DocumentSymbolResponse> {
        let document = self.document(&params.text_document.uri)?;
        document.index()?;
        let document = &*document;
        let index = document.built()?;
        let symbols = index.declarations.iter().map(|d| symbol(document, d)).collect();
        Some(DocumentSymbolResponse::Nested(symbols))
    }

    fn formatting(&mut self, params: &DocumentFormattingParams) -> Option<Vec<TextEdit>> {
        let document = self.document(&params.text_document.uri)?;
        let formatted = crate::syntax::format(&document.text).ok()?;
        if formatted == document.text {
            return Some(Vec::new());
        }
        let whole = crate::syntax::Span::new(0, document.text.len());
        Some(vec![TextEdit::new(document.range(whole), formatted)])
    }
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written out.
fn symbol(document: &Document, declaration: &index::Declaration) -> DocumentSymbol {
    let kind = match declaration.kind {
        Kind::Pipeline => SymbolKind::PACKAGE,
        Kind::Var => SymbolKind::VARIABLE,
        Kind::Env => SymbolKind::NAMESPACE,
        Kind::Service => SymbolKind::CLASS,
        Kind::Attr => SymbolKind::PROPERTY,
        Kind::Phase => SymbolKind::FUNCTION,
        Kind::Workflow => SymbolKind::EVENT,
    };
    let children: Vec<DocumentSymbol> = declaration.children.iter().map(|c| symbol(document, c)).collect();
    DocumentSymbol {
        name: document.text[declaration.name.start()..declaration.name.end()].to_owned(),
        detail: declaration.detail.clone(),
        kind,
        tags: None,
        deprecated: None,
        range: document.range(declaration.span),
        selection_range: document.range(declaration.name),
        children: (!children.is_empty()).then_some(children),
    }
}

/// At most this many instances are listed in a phase's hover.
const HOVER_INSTANCES: usize = 20;

/// A phase's hover: its instances with what each waits for (as the graph
/// resolved them), and the workflows that list it.
fn phase_hover(text: &str, name: &str) -> Option<String> {
    let compilation = graph::compile(text);
    let (pipeline, graph) = (compilation.pipeline.as_ref()?, compilation.graph.as_ref()?);
    let id = pipeline.phases.get_index_of(name)?;
    let phase = &pipeline.phases[id];
    let mut out = format!("**phase** `{name}`");
    if phase.per_service {
        out.push_str(" · for each service");
    }
    out.push_str("\n\n");
    let mut instances = 0;
    for node in graph.instances(pipeline, id) {
        instances += 1;
        if instances > HOVER_INSTANCES {
            continue;
        }
        let mut sources: Vec<_> = graph
            .graph
            .neighbors_directed(node, petgraph::Direction::Incoming)
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let _ = write!(out, "- `{}`", graph.instance_id(pipeline, node));
        if sources.is_empty() {
            out.push_str(" waits for nothing\n");
        } else {
            let names: Vec<String> = sources
                .iter()
                .map(|&s| format!("`{}`", instance_id(pipeline, graph.graph[s])))
                .collect();
            let _ = writeln!(out, " after {}", names.join(", "));
        }
    }
    if instances > HOVER_INSTANCES {
        let _ = writeln!(out, "- … and {} more instances", instances - HOVER_INSTANCES);
    }
    let workflows: Vec<String> = pipeline
        .workflows
        .values()
        .filter(|w| w.phases.contains(&id))
        .map(|w| format!("`{}`", w.name.name))
        .collect();
    if workflows.is_empty() {
        out.push_str("\nin no workflow");
    } else {
        let _ = write!(out, "\nworkflows: {}", workflows.join(", "));
    }
    Some(out)
}

/// Any other name's hover: what it is and where it is declared, with the
/// first line of each declaration.
fn name_hover(document: &mut Document, occurrence: Occurrence) -> Option<String> {
    let name = document.name(occurrence).to_owned();
    let index = document.built()?;
    let text = &document.text;
    let mut out = format!("**{}** `{name}`", occurrence.kind.word());
    let definitions: Vec<Occurrence> = index.same(text, occurrence).filter(|o| o.definition).collect();
    if definitions.is_empty() {
        if occurrence.kind == Kind::Var && crate::check::BUILTINS.contains(&name.as_str()) {
            out.push_str(" · built-in");
        }
        return Some(out);
    }
    out.push_str("\n\n```stagecraft\n");
    for definition in definitions {
        // The declaration (or env value, or attribute) that defines it, and
        // the block it is in.
        let mut line = String::new();
        for declaration in &index.declarations {
            if !declaration.span.contains(definition.span.start()) {
                continue;
            }
            let own = declaration
                .children
                .iter()
                .find(|c| c.name == definition.span)
                .map_or(declaration.span, |c| c.span);
            let first = text[own.start()..own.end()].lines().next().unwrap_or_default();
            if own == declaration.span {
                first.trim_end_matches(['{', ' ']).clone_into(&mut line);
            } else {
                let block = &text[declaration.name.start()..declaration.name.end()];
                line = format!("{first}  # {} {block}", declaration.kind.word());
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("```");
    Some(out)
}

fn parse<T: DeserializeOwned>(params: serde_json::Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(params)
}

/// Runs a request handler on its parameters; bad parameters are an error
/// answer, not a crash.
fn answer<P: DeserializeOwned, R: Serialize>(
    id: RequestId,
    params: serde_json::Value,
    handler: impl FnOnce(P) -> R,
) -> Response {
    match parse::<P>(params) {
        Ok(params) => match serde_json::to_value(handler(params)) {
            Ok(value) => Response::new_ok(id, value),
            Err(error) => Response::new_err(id, ErrorCode::InternalError as i32, error.to_string()),
        },
        Err(error) => Response::new_err(id, ErrorCode::InvalidParams as i32, error.to_string()),
    }
}
