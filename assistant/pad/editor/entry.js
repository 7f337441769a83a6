// The parts of CodeMirror 6 the pad uses, bundled into one local file (no CDN: writers work offline too).
export { EditorState, StateField, StateEffect, RangeSetBuilder, Transaction, Annotation, Prec } from "@codemirror/state";
export { EditorView, Decoration, WidgetType, keymap, hoverTooltip, placeholder, drawSelection } from "@codemirror/view";
export { history, undo, redo, defaultKeymap, historyKeymap, isolateHistory, invertedEffects } from "@codemirror/commands";
