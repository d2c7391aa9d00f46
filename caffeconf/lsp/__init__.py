"""The language server (`caffeconf lsp`): open editor buffers -> what `caffeconf validate` reports
for them, published as LSP diagnostics, plus hover, definitions and completion read from the
compiled config. A consumer of compile/ and inspect/, built on pygls; never imports torch."""
