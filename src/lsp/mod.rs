//! The language server: `stagecraft lsp` (`spec/editors.md`).
//!
//! It speaks LSP over stdin and stdout with `lsp-server` and `lsp-types`,
//! keeps the open documents' text, and compiles each version of a document
//! once, on first need ([`document::Analysis`]): diagnostics (the same values
//! `check` prints), definition and references (from the checker's
//! resolution table), hovers (from the pipeline and graph), completion and
//! the outline (from the tree of the declarations that parsed, so a broken
//! declaration does not hide the others), quick fixes (`actions`), rename
//! (`rename`) and semantic tokens (`tokens`) all read that one compilation.
//! Formatting comes from [`crate::syntax::format`].
//!
//! Robustness: client input is never unwrapped; every message is handled
//! under `catch_unwind`, so a bug on one file answers one request with an
//! error and the server goes on. A request about nothing known gets an
//! empty answer (`null` or `[]`).
//!
//! Speed: diagnostics are published once the queue of incoming messages is
//! empty, so a burst of changes is compiled once, for the last text.

mod actions;
mod complete;
mod diagnostics;
mod document;
mod hover;
mod outline;
mod position;
mod rename;
mod tokens;
mod transport;

#[cfg(test)]
mod fuzz;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest,
    PrepareRenameRequest, References, Rename, Request as _, SemanticTokensFullRequest,
};
use lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionOrCommand, CodeActionParams, CodeActionProviderCapability,
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionParams, CompletionResponse,
    DocumentFormattingParams, DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse, GotoDefinitionParams,
    GotoDefinitionResponse, Hover, HoverContents, HoverParams, HoverProviderCapability, InitializeResult, Location,
    MarkupContent, MarkupKind, OneOf, PrepareRenameResponse, PublishDiagnosticsParams, ReferenceParams, RenameOptions,
    RenameParams, SemanticTokens, SemanticTokensFullOptions, SemanticTokensOptions, SemanticTokensParams,
    SemanticTokensResult, SemanticTokensServerCapabilities, ServerCapabilities, ServerInfo, SymbolKind,
    TextDocumentPositionParams, TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri, WorkspaceEdit,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use complete::{Item, complete};
use document::Document;
use outline::Declaration;

use crate::check::Kind;

/// An error that ends the server: the connection failed.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs the server on stdin and stdout until the client says `exit`.
/// Returns whether the client asked for `shutdown` first (the process should
/// exit 0 if so, 1 if not).
///
/// # Errors
///
/// The connection failed (stdin closed before `initialize`, a header that
/// cannot be trusted: `transport`).
pub(crate) fn run_stdio() -> Result<bool, Error> {
    let (connection, client) = Connection::memory();
    let stdio = transport::stdio(client);
    let served = serve(&connection);
    drop(connection);
    // A broken input is the reason the server stopped: it comes first.
    stdio.finish()?;
    served
}

/// What the server offers, sent in answer to `initialize`.
#[must_use]
pub(crate) fn capabilities() -> ServerCapabilities {
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
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..CodeActionOptions::default()
        })),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: lsp_types::WorkDoneProgressOptions::default(),
        })),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: tokens::legend(),
                full: Some(SemanticTokensFullOptions::Bool(true)),
                ..SemanticTokensOptions::default()
            },
        )),
        ..ServerCapabilities::default()
    }
}

/// Serves one connection: the `initialize` handshake, then messages until
/// `exit`. Returns whether `shutdown` came first.
///
/// # Errors
///
/// The connection failed.
pub(crate) fn serve(connection: &Connection) -> Result<bool, Error> {
    let result = InitializeResult {
        capabilities: capabilities(),
        server_info: Some(ServerInfo {
            name: "stagecraft".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
    };
    let closed = |waited: &'static str| {
        move |error: lsp_server::ProtocolError| -> Error {
            if error.channel_is_disconnected() {
                format!("stdin closed before `{waited}`").into()
            } else {
                error.into()
            }
        }
    };
    let (id, _params) = connection.initialize_start().map_err(closed("initialize"))?;
    connection
        .initialize_finish(id, serde_json::to_value(result)?)
        .map_err(closed("initialized"))?;
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
            let Some((document, analysis)) = self.documents.get_mut(&key).and_then(Document::analyzed) else {
                continue;
            };
            let diagnostics = analysis
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
            CodeActionRequest::METHOD => answer(id, request.params, |p| self.code_actions(&p)),
            PrepareRenameRequest::METHOD => refusable(id, request.params, |p| self.prepare_rename(&p)),
            Rename::METHOD => refusable(id, request.params, |p| self.rename(&p)),
            SemanticTokensFullRequest::METHOD => answer(id, request.params, |p| self.semantic_tokens(&p)),
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

    fn definition(&mut self, params: &GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
        let position = &params.text_document_position_params;
        let (document, analysis, name) = self.document(&position.text_document.uri)?.at(position.position)?;
        let locations: Vec<Location> = analysis
            .resolution
            .same(name)
            .filter(|n| n.definition)
            .map(|n| document.location(n.span))
            .collect();
        match locations.len() {
            0 => None,
            1 => locations.into_iter().next().map(GotoDefinitionResponse::Scalar),
            _ => Some(GotoDefinitionResponse::Array(locations)),
        }
    }

    fn references(&mut self, params: &ReferenceParams) -> Vec<Location> {
        let declarations = params.context.include_declaration;
        let position = &params.text_document_position;
        let found = self.document(&position.text_document.uri);
        let Some((document, analysis, name)) = found.and_then(|d| d.at(position.position)) else {
            return Vec::new();
        };
        analysis
            .resolution
            .same(name)
            .filter(|n| declarations || !n.definition)
            .map(|n| document.location(n.span))
            .collect()
    }

    fn hover(&mut self, params: &HoverParams) -> Option<Hover> {
        let position = &params.text_document_position_params;
        let (document, analysis, name) = self.document(&position.text_document.uri)?.at(position.position)?;
        let text = hover::hover(document, analysis, name)?;
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: text,
            }),
            range: Some(document.range(name.span)),
        })
    }

    fn completion(&mut self, params: &CompletionParams) -> Option<CompletionResponse> {
        let position = &params.text_document_position;
        let document = self.document(&position.text_document.uri)?;
        let offset = document.offset(position.position);
        let (document, analysis) = document.analyzed()?;
        let items = complete(document, analysis, offset)
            .into_iter()
            .map(|(name, item)| {
                let (kind, detail) = match item {
                    Item::Phase => (CompletionItemKind::FUNCTION, "phase"),
                    Item::Service => (CompletionItemKind::MODULE, "service"),
                    Item::Env => (CompletionItemKind::ENUM_MEMBER, "env"),
                    Item::Var => (CompletionItemKind::VARIABLE, "variable"),
                    Item::Builtin => (CompletionItemKind::CONSTANT, "built-in variable"),
                    Item::Attr => (CompletionItemKind::PROPERTY, "service attribute"),
                    Item::Secret => (CompletionItemKind::VARIABLE, "secret (read as an environment variable)"),
                    Item::Keyword => (
                        CompletionItemKind::KEYWORD,
                        "clause: runs after the rest of the workflow, whatever happened",
                    ),
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
        let (document, analysis) = self.document(&params.text_document.uri)?.analyzed()?;
        let symbols = analysis.outline.iter().map(|d| symbol(document, d)).collect();
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

impl Server {
    fn code_actions(&mut self, params: &CodeActionParams) -> Option<Vec<CodeActionOrCommand>> {
        // Only quick fixes are offered.
        if let Some(only) = &params.context.only
            && !only
                .iter()
                .any(|kind| CodeActionKind::QUICKFIX.as_str().starts_with(kind.as_str()))
        {
            return Some(Vec::new());
        }
        let document = self.document(&params.text_document.uri)?;
        let range = position::span(&document.lines, &document.text, params.range);
        let (document, analysis) = document.analyzed()?;
        let actions = actions::actions(document, analysis, range);
        Some(actions.into_iter().map(CodeActionOrCommand::CodeAction).collect())
    }

    fn prepare_rename(
        &mut self,
        params: &TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>, rename::Refusal> {
        let Some(document) = self.document(&params.text_document.uri) else {
            return Ok(None);
        };
        let Some((document, analysis, name)) = document.at(params.position) else {
            return Ok(None);
        };
        let span = rename::prepare(document, analysis, name)?;
        Ok(Some(PrepareRenameResponse::Range(document.range(span))))
    }

    fn rename(&mut self, params: &RenameParams) -> Result<Option<WorkspaceEdit>, rename::Refusal> {
        let position = &params.text_document_position;
        let Some(document) = self.document(&position.text_document.uri) else {
            return Ok(None);
        };
        let Some((document, analysis, name)) = document.at(position.position) else {
            return Ok(None);
        };
        let spans = rename::rename(document, analysis, name, &params.new_name)?;
        let edits = spans
            .into_iter()
            .map(|span| TextEdit::new(document.range(span), params.new_name.clone()))
            .collect();
        Ok(Some(WorkspaceEdit {
            changes: Some(std::collections::HashMap::from([(document.uri.clone(), edits)])),
            ..WorkspaceEdit::default()
        }))
    }

    fn semantic_tokens(&mut self, params: &SemanticTokensParams) -> Option<SemanticTokensResult> {
        let (document, analysis) = self.document(&params.text_document.uri)?.analyzed()?;
        Some(SemanticTokensResult::Tokens(SemanticTokens {
            result_id: None,
            data: tokens::tokens(document, analysis),
        }))
    }
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written out.
fn symbol(document: &Document, declaration: &Declaration) -> DocumentSymbol {
    let kind = match declaration.kind {
        Kind::Pipeline => SymbolKind::PACKAGE,
        Kind::Var => SymbolKind::VARIABLE,
        Kind::Secret => SymbolKind::KEY,
        Kind::Env => SymbolKind::NAMESPACE,
        Kind::Service => SymbolKind::CLASS,
        Kind::Attr => SymbolKind::PROPERTY,
        Kind::Phase => SymbolKind::FUNCTION,
        Kind::Workflow => SymbolKind::EVENT,
    };
    let children: Vec<DocumentSymbol> = declaration.children.iter().map(|c| symbol(document, c)).collect();
    DocumentSymbol {
        name: document.slice(declaration.name).to_owned(),
        detail: declaration.detail.clone(),
        kind,
        tags: None,
        deprecated: None,
        range: document.range(declaration.span),
        selection_range: document.range(declaration.name),
        children: (!children.is_empty()).then_some(children),
    }
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

/// As [`answer`], for a handler that may refuse: a refusal is a
/// `RequestFailed` error with its message, which editors show.
fn refusable<P: DeserializeOwned, R: Serialize>(
    id: RequestId,
    params: serde_json::Value,
    handler: impl FnOnce(P) -> Result<R, String>,
) -> Response {
    match parse::<P>(params).map(handler) {
        Ok(Err(refusal)) => Response::new_err(id, ErrorCode::RequestFailed as i32, refusal),
        Ok(Ok(result)) => match serde_json::to_value(result) {
            Ok(value) => Response::new_ok(id, value),
            Err(error) => Response::new_err(id, ErrorCode::InternalError as i32, error.to_string()),
        },
        Err(error) => Response::new_err(id, ErrorCode::InvalidParams as i32, error.to_string()),
    }
}
