-- Commands; the plugin starts working once require("ghostwriter").setup({...}) is called (see README.md).
vim.api.nvim_create_user_command("GhostwriterUnconditional", function() require("ghostwriter").unconditional() end,
  { desc = "Insert an unconditional sample from ghostwriter at the cursor" })
vim.api.nvim_create_user_command("GhostwriterSuggest", function() require("ghostwriter").suggest(1) end,
  { desc = "Ask ghostwriter for a suggestion at the cursor now" })
