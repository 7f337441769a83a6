// The trigger kind of an inline completion request, as the server (LSP 3.18) reads it.
//
// vscode-languageclient 9 copies VS Code's own number into the request (Invoke = 0, Automatic = 1, the numbering of
// the 3.17 proposal), while LSP 3.18 and the server number them Invoked = 1, Automatic = 2: unmapped, every pause in
// typing would ask for all the alternatives, and Alt+] / Alt+\ would be refused. No vscode import here, so the tests
// run this module in plain Node against a real server.
import type { InlineCompletionTriggerKind } from "vscode";

export const INVOKED = 1;
export const AUTOMATIC = 2;

/** LSP 3.18's number for VS Code's trigger kind (0: asked for, Alt+] or Alt+\; 1: as you type). */
export function lspTriggerKind(kind: InlineCompletionTriggerKind): number {
  return (kind as number) === 0 ? INVOKED : AUTOMATIC;
}
