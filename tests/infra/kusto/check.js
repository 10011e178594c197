#!/usr/bin/env node
// Semantic check of KQL queries with Microsoft's Kusto.Language (npm @kusto/language-service-next),
// the same analyzer the Kusto tooling uses: unknown tables, columns and functions, and type errors
// are diagnostics of severity Error.
//
// Input (stdin, JSON): {"schemas": {"<variant>": {"requests": "(timestamp:datetime, ...)", ...}, ...},
//                       "queries": [{"id": "queries/silence-alert.kql", "text": "..."}, ...]}
// Output (stdout, JSON): {"<variant>": {"<id>": [{"code", "message", "start", "line"}, ...], ...}, ...}
// Loading Kusto.Language takes seconds, so one run checks every query under every schema variant.
// Exit code: 0 when it could run (errors are reported in the output, the caller judges), 2 otherwise.
'use strict';

require('@kusto/language-service-next/bridge.min.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');

const K = globalThis.Kusto.Language;
const S = K.Symbols;

function readStdin() {
  return require('fs').readFileSync(0, 'utf8');
}

function globalsFor(tables) {
  const symbols = Object.entries(tables).map(
    ([name, schema]) => new S.TableSymbol.$ctor7(name, schema, null),
  );
  // An Application Insights component behaves as one database holding these tables.
  return K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.$ctor2('appinsights', null, symbols));
}

function lineOf(text, offset) {
  return text.slice(0, offset).split('\n').length;
}

function check(globals, text) {
  const code = K.KustoCode.ParseAndAnalyze(text, globals);
  const diagnostics = code.GetDiagnostics();
  const errors = [];
  for (let i = 0; i < diagnostics.Count; i++) {
    const d = diagnostics.getItem(i);
    if (String(d.Severity) === 'Error') {
      errors.push({ code: d.Code, message: d.Message, start: d.Start, line: lineOf(text, d.Start) });
    }
  }
  return errors;
}

function main() {
  let input;
  try {
    input = JSON.parse(readStdin());
  } catch (e) {
    process.stderr.write(`check.js: stdin is not the expected JSON: ${e.message}\n`);
    process.exit(2);
  }
  const results = {};
  for (const [variant, tables] of Object.entries(input.schemas)) {
    const globals = globalsFor(tables);
    results[variant] = {};
    for (const q of input.queries) results[variant][q.id] = check(globals, q.text);
  }
  process.stdout.write(JSON.stringify(results));
}

main();
