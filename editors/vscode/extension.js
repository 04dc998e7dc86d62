// The stagecraft VS Code extension: highlighting comes from the TextMate
// grammar in syntaxes/; everything else (diagnostics, definition,
// references, hover, completion, outline, formatting) from `stagecraft lsp`.
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration('stagecraft').get('server.path') || 'stagecraft';
  const serverOptions = {
    run: { command, args: ['lsp'], transport: TransportKind.stdio },
    debug: { command, args: ['lsp'], transport: TransportKind.stdio },
  };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'stagecraft' },
      { scheme: 'untitled', language: 'stagecraft' },
    ],
  };
  client = new LanguageClient('stagecraft', 'stagecraft', serverOptions, clientOptions);
  client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `stagecraft: cannot start \`${command} lsp\` (${error.message}). Set stagecraft.server.path.`,
    );
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
