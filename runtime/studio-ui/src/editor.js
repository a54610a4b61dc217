// The studio's editor: CodeMirror 6 with JavaScript highlighting,
// completions for the code-action API and the server's diagnostics as you
// type. Bundled by ../build.sh into runtime/src/studio/assets/editor.js and
// used by the page as `SandbotEditor.create(parent, options)`.

import { EditorState } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";
import { syntaxHighlighting, defaultHighlightStyle, bracketMatching, indentOnInput } from "@codemirror/language";
import { autocompletion, closeBrackets, completionKeymap } from "@codemirror/autocomplete";
import { linter, lintGutter, setDiagnostics } from "@codemirror/lint";
import { searchKeymap } from "@codemirror/search";
import * as api from "./api.js";

const option = (o, type) => ({ label: o.label, type: o.type || type, detail: o.detail, info: o.info });

// What to offer after `NAME.`: the object's members, from the text before it.
function membersFor(before, argKeys) {
  if (/\bargs\.$/.test(before)) return argKeys.map((k) => ({ label: k, type: "property", detail: "block argument" }));
  if (/(^|[^\w$.])_\.$/.test(before)) return api.lodash.map((o) => option(o, "function"));
  if (/\bsession\.$/.test(before)) return api.session.map((o) => option(o, "method"));
  if (/\bconsole\.$/.test(before)) return api.consoleMethods.map((o) => option(o, "method"));
  // A builder chain: ChatlayerResponseBuilder() or a variable made from one.
  if (/ChatlayerResponseBuilder\(\)[\s\S]*\.$/.test(before.slice(-400)) || /\b(builder|b|response)\.$/.test(before)) {
    return api.builder.map((o) => option(o, "method"));
  }
  if (/\b(res|resp|r)\.$/.test(before)) return api.response.map((o) => option(o, "property"));
  return null;
}

function completions(getArgKeys) {
  return (context) => {
    const member = context.matchBefore(/[\w$]*$/);
    const line = context.state.doc.lineAt(context.pos);
    const before = context.state.sliceDoc(Math.max(0, line.from - 2000), member ? member.from : context.pos);
    if (before.endsWith(".")) {
      const options = membersFor(before, getArgKeys());
      if (!options) return null;
      return { from: member ? member.from : context.pos, options, validFor: /^[\w$]*$/ };
    }
    if (!member || (member.from === member.to && !context.explicit)) return null;
    return { from: member.from, options: api.globals.map((o) => option(o, "variable")), validFor: /^[\w$]*$/ };
  };
}

// Server diagnostics (line/column) as CodeMirror ones: the rest of the line
// from the column, or the whole line.
function toDiagnostics(doc, found) {
  return found.map((d) => {
    const lineNo = Math.min(Math.max(d.line, 1), doc.lines);
    const line = doc.line(lineNo);
    const from = Math.min(line.from + Math.max(d.column - 1, 0), line.to);
    const to = from < line.to ? line.to : Math.min(from + 1, doc.length);
    return { from: from === to && from > line.from ? from - 1 : from, to, severity: d.severity || "error", message: d.message };
  });
}

export function create(parent, options) {
  const argKeys = () => (options.argKeys ? options.argKeys() : []);
  const extensions = [
    lineNumbers(), highlightActiveLineGutter(), history(), drawSelection(), indentOnInput(),
    bracketMatching(), closeBrackets(), highlightActiveLine(),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    javascript(),
    autocompletion({ override: [completions(argKeys)], activateOnTyping: true }),
    lintGutter(),
    keymap.of([indentWithTab, ...defaultKeymap, ...historyKeymap, ...completionKeymap, ...searchKeymap]),
    EditorView.updateListener.of((u) => { if (u.docChanged && options.onChange) options.onChange(u.state.doc.toString()); }),
  ];
  if (options.check) {
    extensions.push(linter(async (view) => toDiagnostics(view.state.doc, await options.check(view.state.doc.toString())), { delay: 250 }));
  }
  const view = new EditorView({ state: EditorState.create({ doc: options.doc || "", extensions }), parent });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    // Marks a run's failure at its line (kind and message).
    markFailure: (line, message) => {
      const doc = view.state.doc;
      view.dispatch(setDiagnostics(view.state, toDiagnostics(doc, [{ line, column: 1, message }])));
    },
  };
}
