#!/usr/bin/env node
// Tokenizes a .stagecraft file with the VS Code grammar, through the engine
// VS Code itself uses (vscode-textmate on vscode-oniguruma), and prints each
// line followed by its tokens and their scopes. `tests/textmate.rs` runs it
// over every example and snapshots the output.
//
//   node tokenize.js [--grammar GRAMMAR] FILE
//
// GRAMMAR defaults to ../syntaxes/stagecraft.tmLanguage.json (the tests pass
// a broken copy to prove that a broken grammar fails).
//
// Exit status: 0 when the file was tokenized and every token outside blanks
// has a scope of its own; 1 when a token has only the root scope (the grammar
// does not cover that text); 2 when a pattern of the grammar does not compile
// under Oniguruma, or anything else fails.

"use strict";

const fs = require("fs");
const path = require("path");
const textmate = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const DEFAULT_GRAMMAR = path.join(__dirname, "..", "syntaxes", "stagecraft.tmLanguage.json");
const ROOT = "source.stagecraft";
const SUFFIX = ".stagecraft";

async function loadOniguruma() {
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  return {
    createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
    createOnigString: (text) => new oniguruma.OnigString(text),
  };
}

// Every regex of the grammar, with where it is, whether or not a sample
// reaches it: vscode-textmate compiles a rule only when it first tries it.
function patterns(node, where, out) {
  if (Array.isArray(node)) {
    node.forEach((item, i) => patterns(item, `${where}[${i}]`, out));
  } else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (["match", "begin", "end", "while"].includes(key) && typeof value === "string") {
        out.push({ where: `${where}.${key}`, source: value });
      } else {
        patterns(value, `${where}.${key}`, out);
      }
    }
  }
  return out;
}

function checkPatterns(grammarText) {
  const bad = [];
  for (const { where, source } of patterns(JSON.parse(grammarText), "grammar", [])) {
    try {
      new oniguruma.OnigScanner([source]).dispose();
    } catch (error) {
      bad.push(`${where}: ${JSON.stringify(source)}: ${error.message || error}`);
    }
  }
  return bad;
}

function scopes(token) {
  return token.scopes
    .filter((scope) => scope !== ROOT)
    .map((scope) => (scope.endsWith(SUFFIX) ? scope.slice(0, -SUFFIX.length) : scope));
}

function tokenizeFile(grammar, text, file) {
  const out = [];
  const uncovered = [];
  let stack = textmate.INITIAL;
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  lines.forEach((line, index) => {
    const result = grammar.tokenizeLine(line, stack);
    stack = result.ruleStack;
    if (line.trim() === "") return;
    out.push(`${index + 1}: ${line}`);
    for (const token of result.tokens) {
      const piece = line.slice(token.startIndex, token.endIndex);
      const named = scopes(token);
      if (named.length === 0) {
        if (piece.trim() !== "") uncovered.push(`${file}:${index + 1}:${token.startIndex + 1}: ${JSON.stringify(piece)}`);
        continue;
      }
      out.push(`    ${JSON.stringify(piece)} ${named.join(" > ")}`);
    }
  });
  return { out, uncovered };
}

async function main() {
  const args = process.argv.slice(2);
  let grammarPath = DEFAULT_GRAMMAR;
  if (args[0] === "--grammar" && args.length > 1) grammarPath = args.splice(0, 2)[1];
  if (args.length !== 1) throw new Error("usage: node tokenize.js [--grammar GRAMMAR] FILE");
  const file = args[0];
  const grammarText = fs.readFileSync(grammarPath, "utf8");
  const onigLib = loadOniguruma();
  await onigLib; // checkPatterns needs the WASM loaded
  const bad = checkPatterns(grammarText);
  if (bad.length > 0) {
    process.stderr.write(`patterns Oniguruma rejects:\n${bad.join("\n")}\n`);
    process.exit(2);
  }
  const registry = new textmate.Registry({
    onigLib,
    loadGrammar: async (scopeName) =>
      scopeName === ROOT ? textmate.parseRawGrammar(grammarText, grammarPath) : null,
  });
  const grammar = await registry.loadGrammar(ROOT);
  if (!grammar) throw new Error(`the grammar ${grammarPath} did not load`);
  const { out, uncovered } = tokenizeFile(grammar, fs.readFileSync(file, "utf8"), path.basename(file));
  process.stdout.write(out.join("\n") + "\n");
  if (uncovered.length > 0) {
    process.stderr.write(`text with no scope but the root (${ROOT}):\n${uncovered.join("\n")}\n`);
    process.exit(1);
  }
}

main().catch((error) => {
  process.stderr.write(`tokenize.js: ${error.stack || error}\n`);
  process.exit(2);
});
