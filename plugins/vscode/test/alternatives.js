// Runs in plain Node after `npm run compile`: the extension's trigger mapping (out/trigger.js) and the protocol library
// it ships (vscode-languageserver-protocol, under vscode-languageclient) ask a real `assistant lsp` for inline
// completions the way the extension's client does, with the settings' defaults from package.json.
// Usage: node test/alternatives.js MODEL SERVER-COMMAND...; prints one JSON line: the items' texts for each trigger.
"use strict";
const { spawn } = require("child_process");
const path = require("path");
const rpc = require("vscode-languageserver-protocol/node");
const { lspTriggerKind } = require("../out/trigger");

const [model, command, ...args] = process.argv.slice(2);
const PROSE = "The robot looked at the man for a long time. Then it said that the door was open, and";
const URI = "file:///tmp/story.txt";

async function main() {
  const pkg = require(path.join(__dirname, "..", "package.json"));
  const settings = {};
  for (const [key, value] of Object.entries(pkg.contributes.configuration.properties)) {
    const name = key.replace(/^ghostwriter\./, "");
    if (!["command", "languages"].includes(name)) settings[name] = value.default;  // what extension.ts sends
  }
  Object.assign(settings, { model, temperature: 1.5, maxChars: 40, autoChars: 20, stopAt: "length" });
  const server = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
  const connection = rpc.createProtocolConnection(
    new rpc.StreamMessageReader(server.stdout), new rpc.StreamMessageWriter(server.stdin));
  connection.listen();
  await connection.sendRequest(rpc.InitializeRequest.type,
    { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: settings });
  await connection.sendNotification(rpc.InitializedNotification.type, {});
  await connection.sendNotification(rpc.DidOpenTextDocumentNotification.type,
    { textDocument: { uri: URI, languageId: "plaintext", version: 1, text: PROSE } });
  const answers = {};
  for (const [name, vscodeKind] of [["automatic", 1], ["invoked", 0]]) {  // VS Code's Automatic = 1, Invoke = 0
    const result = await connection.sendRequest(rpc.InlineCompletionRequest.type, {
      textDocument: { uri: URI }, position: { line: 0, character: PROSE.length },
      context: rpc.InlineCompletionContext.create(lspTriggerKind(vscodeKind)),
    });
    const items = Array.isArray(result) ? result : result.items;
    answers[name] = items.map((item) => ({ text: item.insertText, command: item.command && item.command.command }));
  }
  await connection.sendRequest(rpc.ShutdownRequest.type);
  await connection.sendNotification(rpc.ExitNotification.type);
  console.log(JSON.stringify(answers));
  connection.dispose();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
