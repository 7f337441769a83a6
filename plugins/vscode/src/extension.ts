// ghostwriter for VS Code: the `assistant lsp` server's continuations as inline suggestions.
//
// vscode-languageclient turns the server's textDocument/inlineCompletion into VS Code's inline
// suggestions (ghost text; Tab accepts). Each item carries the server's `ghostwriter.event` command,
// which VS Code runs once the suggestion is accepted, so the store learns what was taken.
// VS Code's next and previous inline suggestion keys (Alt+] / Alt+[) ask the provider again with an explicit
// trigger, which the server answers with up to `alternatives` different continuations to cycle through.
import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";
import { lspTriggerKind } from "./trigger";

let client: LanguageClient | undefined;

const SETTINGS = ["model", "temperature", "topP", "autoChars", "maxChars", "alternatives", "contextChars", "stopAt",
  "debounceMs", "quantize", "sampling"];

function settings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration("ghostwriter");
  return Object.fromEntries(SETTINGS.map((name) => [name, config.get(name)]));
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const config = vscode.workspace.getConfiguration("ghostwriter");
  const [command, ...args] = config.get<string[]>("command") ?? ["assistant", "lsp"];
  const serverOptions: ServerOptions = { command, args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: (config.get<string[]>("languages") ?? ["plaintext"]).map((language) => ({ language })),
    initializationOptions: settings(),
    synchronize: { configurationSection: "ghostwriter" },
    middleware: {
      provideInlineCompletionItems: (document, position, context, token, next) =>
        // the client passes the context on as it is: give it the trigger's number the server reads (see trigger.ts),
        // without the suggest widget's selection, whose VS Code range would not arrive as an LSP range (unused)
        next(document, position, { triggerKind: lspTriggerKind(context.triggerKind), selectedCompletionInfo: undefined },
          token),
    },
  };
  client = new LanguageClient("ghostwriter", "ghostwriter", serverOptions, clientOptions);
  client.registerProposedFeatures(); // textDocument/inlineCompletion is LSP 3.18
  await client.start();

  context.subscriptions.push(
    vscode.commands.registerTextEditorCommand("ghostwriter.insertUnconditional", async (editor) => {
      const answer = await client?.sendRequest<{ text: string }>("workspace/executeCommand", {
        command: "ghostwriter.unconditional",
        arguments: [editor.document.uri.toString()],
      });
      if (answer?.text) {
        await editor.edit((edit) => edit.insert(editor.selection.active, answer.text));
      }
    }),
  );
}

export function deactivate(): Thenable<void> | undefined {
  return client?.stop();
}
