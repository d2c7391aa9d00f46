// Starts `caffeconf lsp` for YAML, TOML and prototxt files; the server itself ignores YAML and
// TOML files that are not caffeconf configs, so it can stay on beside Red Hat's YAML extension.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate() {
  const [command, ...args] = vscode.workspace.getConfiguration("caffeconf").get("command");
  client = new LanguageClient("caffeconf", "caffeconf", { command, args }, {
    documentSelector: ["yaml", "toml", "prototxt"].map((language) => ({ scheme: "file", language })),
  });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
